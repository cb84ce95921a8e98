export { ConfigSchema, type Config } from './schema.js';
export { ConfigError, loadConfig, mergeConfig, readConfigFile, resolveConfig } from './load.js';
export { nodeName } from './node-name.js';
