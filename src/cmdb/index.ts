/**
 * The CMDB: livery's single source of truth. The rest of livery programs against the
 * interfaces of store.ts, exported here; openCmdbAt opens them on SQLite or PostgreSQL.
 * No SQL lives outside src/cmdb.
 */
export type * from './store.js';
export { openCmdb, SqliteCmdb } from './sqlite.js';
export { openCmdbAt } from './open.js';
export { redactUrl, type CmdbTarget, type PostgresTarget } from './target.js';
export type { SqlCmdb } from './sql-cmdb.js';
export { CmdbError } from './errors.js';
export { MachineCache } from './machine-cache.js';
export { Writer } from './writer.js';
export { ROLES } from './tokens.js';
export type * from './types.js';
export type { NodeBeat, NodeRecord } from './nodes.js';
export type { ImageHolder } from './image-nodes.js';
