import { hostname } from 'node:os';
import type { Config } from './schema.js';

// Read once: os.hostname() is a system call, and the boot door names this node per request.
let host: string | undefined;

/** This node's name (issue #28): node.name, else the host's (as it was when first asked). */
export const nodeName = (config: Config): string => config.node.name || (host ??= hostname());
