import { createHash } from 'node:crypto';
import type { Db } from '../db.js';
import { MIGRATIONS } from '../migrations.js';
import type { SqliteCmdb } from '../sqlite.js';
import type { PostgresTarget } from '../target.js';
import { openMigrated } from './cmdb.js';
import { PG_MIGRATIONS, SQLITE_VERSION_OF } from './schema.js';
import type { SyncPg } from './sync-pg.js';

/** The tables in an order that satisfies their foreign keys, with the column that orders their rows. */
const TABLES: [table: string, order: string][] = [
  ['subnets', 'id'],
  ['images', 'id'],
  ['image_artifacts', 'image_id, name'],
  ['channels', 'image_name, channel'],
  ['channel_history', 'id'],
  ['machines', 'id'],
  ['machine_macs', 'mac'],
  ['machine_bmcs', 'machine_id'],
  ['machine_facts', 'id'],
  ['leases', 'ip'],
  ['api_tokens', 'id'],
  ['console_sessions', 'id_sha256'],
  ['assignments', 'id'],
  ['audit_log', 'id'],
  ['events', 'id'],
  ['rollouts', 'id'],
  ['rollout_waves', 'rollout_id, wave'],
  ['rollout_machines', 'rollout_id, machine_id'],
  ['nodes', 'name'],
  ['node_roles', 'role'],
  ['image_nodes', 'image_id, node'],
];
/** Tables whose ids come from a sequence on PostgreSQL: it must go on after the copied ids. */
const IDENTITY = ['subnets', 'channel_history', 'machines', 'machine_facts', 'assignments', 'audit_log', 'events', 'rollouts'];
const CHUNK = 2000;

export interface CopiedTable {
  table: string;
  rows: number;
  /** An order-free digest of every row's content, equal on both sides. */
  digest: string;
}

export class CopyError extends Error {}

/** Copies the CMDB `source` into the empty PostgreSQL database `target`: see copySqliteToPostgres. */
export function copyCmdbToPostgres(source: SqliteCmdb, target: PostgresTarget): CopiedTable[] {
  const client = openMigrated(target);
  try {
    const pgVersion = PG_MIGRATIONS.length;
    if (source.schemaVersion() !== SQLITE_VERSION_OF[pgVersion - 1] || MIGRATIONS.length !== SQLITE_VERSION_OF[pgVersion - 1]) {
      throw new CopyError(`the SQLite schema is version ${source.schemaVersion()}; this livery copies version ${SQLITE_VERSION_OF[pgVersion - 1]}`);
    }
    return copySqliteToPostgres(source.db, client);
  } finally {
    client.close();
  }
}

/**
 * Copies a SQLite CMDB (at the schema version PostgreSQL's version 1 equals) into an empty
 * PostgreSQL one in one transaction, then reads every table back and checks that both hold the
 * same rows: the same count and the same digest over each row's columns and values. Any
 * difference rolls the copy back; the target is then as empty as it was.
 */
export function copySqliteToPostgres(from: Db, to: SyncPg): CopiedTable[] {
  to.begin();
  try {
    for (const [table] of TABLES) {
      const n = (to.query(`SELECT count(*) AS n FROM ${table}`, []).rows[0] as { n: number }).n;
      if (n > 0) throw new CopyError(`the target database is not empty: ${table} holds ${n} rows (copy into a new database)`);
    }
    const copied: CopiedTable[] = [];
    for (const [table, order] of TABLES) {
      const source = new RowDigest();
      for (let offset = 0; ; offset += CHUNK) {
        const rows = from.prepare(`SELECT * FROM ${table} ORDER BY ${order} LIMIT ? OFFSET ?`).all(CHUNK, offset) as Record<string, unknown>[];
        if (rows.length === 0) break;
        for (const r of rows) source.add(r);
        to.query(`INSERT INTO ${table} SELECT * FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb)`, [JSON.stringify(rows)]);
      }
      const target = new RowDigest();
      for (let offset = 0; ; offset += CHUNK) {
        const rows = to.query(`SELECT * FROM ${table} ORDER BY ${order} LIMIT $1 OFFSET $2`, [CHUNK, offset]).rows;
        if (rows.length === 0) break;
        for (const r of rows) target.add(r);
      }
      if (source.rows !== target.rows || source.hex() !== target.hex()) {
        throw new CopyError(`${table}: ${source.rows} rows read, ${target.rows} in PostgreSQL, and their contents differ: nothing was copied`);
      }
      copied.push({ table, rows: source.rows, digest: source.hex() });
    }
    for (const table of IDENTITY) {
      to.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), coalesce(max(id), 0) + 1, false) FROM ${table}`, []);
    }
    to.commit();
    return copied;
  } catch (err) {
    to.rollback();
    throw err;
  }
}

/** A sum of per-row hashes: equal for the same rows in any order; a row's columns are hashed by name. */
class RowDigest {
  rows = 0;
  private sum = 0n;

  add(row: Record<string, unknown>): void {
    const text = JSON.stringify(Object.keys(row).sort().map((k) => [k, row[k]]));
    this.sum = (this.sum + BigInt(`0x${createHash('sha256').update(text).digest('hex').slice(0, 16)}`)) & 0xffffffffffffffffn;
    this.rows++;
  }

  hex(): string {
    return this.sum.toString(16).padStart(16, '0');
  }
}
