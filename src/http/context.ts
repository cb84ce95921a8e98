import type { Registry } from 'prom-client';
import type { Cmdb } from '../cmdb/index.js';
import type { Config } from '../config/index.js';

/** What every route group is given: the CMDB, the config and the metrics registry. */
export interface HttpContext {
  cmdb: Cmdb;
  config: Config;
  registry: Registry;
}
