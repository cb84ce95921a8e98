import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb, openCmdbAt, type SqlCmdb } from '../../src/cmdb/index.js';
import { execRaw } from '../helpers/db-snapshot.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

/** A table as both engines must agree on it: columns with whether they take NULL, the primary key, the unique keys. */
interface TableShape {
  columns: Record<string, 'null' | 'not null'>;
  primaryKey: string[];
  unique: string[][];
}

/** Bookkeeping of the migration runners themselves, not the CMDB's schema (SQLite keeps its version in user_version). */
const RUNNER_TABLES = new Set(['livery_schema']);

const sortKeys = (keys: string[][]) => keys.map((k) => [...k].sort()).sort((a, b) => a.join(',').localeCompare(b.join(',')));

function sqliteShape(cmdb: SqlCmdb): Record<string, TableShape> {
  const tables = execRaw(cmdb, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name") as { name: string }[];
  const shape: Record<string, TableShape> = {};
  for (const { name } of tables) {
    const cols = execRaw(cmdb, `SELECT name, "notnull" AS nn, pk FROM pragma_table_info('${name}')`) as { name: string; nn: number; pk: number }[];
    const primaryKey = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    const indexes = execRaw(cmdb, `SELECT name, "unique" AS u, origin FROM pragma_index_list('${name}')`) as { name: string; u: number; origin: string }[];
    const unique = indexes
      .filter((i) => i.u === 1 && i.origin !== 'pk')
      .map((i) => (execRaw(cmdb, `SELECT name FROM pragma_index_info('${i.name}') ORDER BY seqno`) as { name: string }[]).map((c) => c.name));
    shape[name] = {
      // A primary key's columns never hold NULL on PostgreSQL; SQLite's table_info reports an INTEGER PRIMARY KEY as nullable.
      columns: Object.fromEntries(cols.map((c) => [c.name, c.nn === 1 || c.pk > 0 ? 'not null' : 'null'])),
      primaryKey,
      unique: sortKeys(unique),
    };
  }
  return shape;
}

function postgresShape(cmdb: SqlCmdb): Record<string, TableShape> {
  // Two catalog queries for every table at once: one per table costs a round trip each.
  const cols = execRaw(
    cmdb,
    `SELECT c.relname AS table, a.attname AS name, a.attnotnull AS "notNull"
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped`,
  ) as { table: string; name: string; notNull: boolean }[];
  // Unique indexes, whether made by a constraint or by CREATE UNIQUE INDEX, as SQLite lists both.
  const keys = execRaw(
    cmdb,
    `SELECT c.relname AS table, i.indisprimary AS primary, array_to_json(array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n))::text AS columns
     FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND i.indisunique AND i.indexprs IS NULL`,
  ) as { table: string; primary: boolean; columns: string }[];
  const shape: Record<string, TableShape> = {};
  for (const name of new Set(cols.map((c) => c.table))) {
    if (RUNNER_TABLES.has(name)) continue;
    const own = keys.filter((k) => k.table === name);
    shape[name] = {
      columns: Object.fromEntries(cols.filter((c) => c.table === name).map((c) => [c.name, c.notNull ? 'not null' : 'null'])),
      primaryKey: JSON.parse(own.find((k) => k.primary)?.columns ?? '[]'),
      unique: sortKeys(own.filter((k) => !k.primary).map((k) => JSON.parse(k.columns) as string[])),
    };
  }
  return shape;
}

describe.skipIf(POSTGRES_SKIP)(POSTGRES_SKIP ? `schema parity skipped: ${POSTGRES_SKIP}` : 'the SQLite and PostgreSQL schemas after every migration', () => {
  const dir = tempDir();
  let pg: TestPostgres;
  let sqlite: SqlCmdb;
  let postgres: SqlCmdb;

  beforeAll(async () => {
    pg = await startPostgres();
    sqlite = openCmdb(join(dir.path, 'livery.db'));
    postgres = openCmdbAt({ engine: 'postgres', url: pg.url, password: pg.password });
  }, 120_000);
  afterAll(async () => {
    sqlite?.close();
    postgres?.close();
    await pg?.stop();
    dir.cleanup();
  }, 60_000);

  it('have the same tables, columns, NOT NULLs, primary keys and unique keys', () => {
    const a = sqliteShape(sqlite);
    const b = postgresShape(postgres);
    expect(Object.keys(a).length).toBeGreaterThan(10);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const table of Object.keys(a)) expect(b[table], `table ${table}`).toEqual(a[table]);
  });
});
