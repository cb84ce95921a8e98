import type { Db } from '../../src/cmdb/db.js';
import type { SqlCmdb } from '../../src/cmdb/index.js';
import { SqliteCmdb } from '../../src/cmdb/index.js';
import { PostgresCmdb } from '../../src/cmdb/postgres/cmdb.js';
import { numberParameters } from '../../src/cmdb/postgres/pg-db.js';
import { SyncPg } from '../../src/cmdb/postgres/sync-pg.js';

/** The nodes' heartbeats: they move every few seconds whatever a request does. */
const LIVENESS = new Set(['nodes', 'node_roles']);

/**
 * Every row of every table (the nodes' heartbeats aside), for asserting that a rejected request
 * changed nothing: of a SQLite connection, or of either engine's CMDB.
 */
export function dumpTables(from: Db | SqlCmdb): Record<string, unknown[]> {
  if (from instanceof PostgresCmdb) return withClient(from, dumpPostgres);
  const db = from instanceof SqliteCmdb ? from.db : (from as Db);
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as {
    name: string;
  }[];
  return Object.fromEntries(tables.filter(({ name }) => !LIVENESS.has(name)).map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all()]));
}

/** dumpTables() of a PostgreSQL database, through a client the caller keeps (a client is a thread and a pool to start). */
export function dumpPostgres(client: SyncPg): Record<string, unknown[]> {
  const tables = client.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").rows;
  return Object.fromEntries(tables.filter(({ name }) => !LIVENESS.has(name)).map(({ name }) => [name, client.query(`SELECT * FROM "${name}" ORDER BY ctid`).rows]));
}

/**
 * Runs a statement (with `?` parameters) straight on the CMDB's database, past every store's
 * checks (rows as an older livery wrote them), and returns the rows it returns.
 */
export function execRaw(cmdb: SqlCmdb, sql: string, ...args: unknown[]): Record<string, unknown>[] {
  if (cmdb instanceof SqliteCmdb) {
    const statement = cmdb.db.prepare(sql);
    return statement.reader ? (statement.all(...args) as Record<string, unknown>[]) : (statement.run(...args), []);
  }
  return withClient(cmdb as PostgresCmdb, (client) => client.query(numberParameters(sql).text, args).rows);
}

function withClient<T>(cmdb: PostgresCmdb, fn: (client: SyncPg) => T): T {
  const client = new SyncPg({ url: cmdb.target.url, password: cmdb.target.password });
  try {
    return fn(client);
  } finally {
    client.close();
  }
}
