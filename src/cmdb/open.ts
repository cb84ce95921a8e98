import { PostgresCmdb } from './postgres/cmdb.js';
import type { SqlCmdb } from './sql-cmdb.js';
import { openCmdb } from './sqlite.js';
import type { CmdbTarget } from './target.js';

/** Opens the CMDB where `target` says, bringing its schema up to date. */
export function openCmdbAt(target: CmdbTarget): SqlCmdb {
  return target.engine === 'sqlite' ? openCmdb(target.path) : PostgresCmdb.open(target);
}
