import { hostname } from 'node:os';
import type { Config } from './schema.js';

export { ConfigSchema, type Config } from './schema.js';
export { ConfigError, loadConfig, mergeConfig, readConfigFile, resolveConfig } from './load.js';

/** This node's name (issue #28): node.name, else the host's. */
export const nodeName = (config: Config): string => config.node.name || hostname();
