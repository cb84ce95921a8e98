import { hostname } from 'node:os';
import type { Config } from './schema.js';

/** This node's name (issue #28): node.name, else the host's. */
export const nodeName = (config: Config): string => config.node.name || hostname();
