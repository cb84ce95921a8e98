import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
import { openCmdbAt, type CmdbTarget, type SqlCmdb, type SqliteCmdb } from '../../src/cmdb/index.js';
import { SyncPg } from '../../src/cmdb/postgres/sync-pg.js';
import { dumpTables } from './db-snapshot.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { createDatabase } from './test-database.js';
import { tempDir } from './tmp.js';

export const ENGINES = ['sqlite', 'postgres'] as const;
export type EngineName = (typeof ENGINES)[number];

/** One test's CMDB on one engine. */
export interface EngineRig {
  engine: EngineName;
  target: CmdbTarget;
  /** Opens a connection to this test's database (another one each call). */
  open(): SqlCmdb;
  /** Every row of every table, in a stable order: for asserting that nothing changed. */
  dump(): Record<string, unknown[]>;
}

function dumpPostgres(target: { url: string; password?: string }): Record<string, unknown[]> {
  const client = new SyncPg({ url: target.url, password: target.password });
  try {
    const tables = client.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").rows;
    return Object.fromEntries(tables.map(({ name }) => [name, client.query(`SELECT * FROM "${name}" ORDER BY ctid`).rows]));
  } finally {
    client.close();
  }
}

/**
 * Runs `body` once per engine: on SQLite (a temp file per test) and on PostgreSQL (one
 * throwaway cluster for the file, a new database per test). `rig()` is the current test's.
 */
export function describeEngines(title: string, body: (rig: () => EngineRig) => void): void {
  describe.each(ENGINES)(`${title} [%s]`, (engine) => {
    let pg: TestPostgres | null = null;
    let current: EngineRig | null = null;
    let cleanup = () => {};
    beforeAll(async () => {
      if (engine === 'postgres') pg = await startPostgres();
    }, 120_000);
    afterAll(async () => {
      await pg?.stop();
    }, 60_000);
    beforeEach(() => {
      if (engine === 'sqlite') {
        const dir = tempDir();
        cleanup = dir.cleanup;
        const target: CmdbTarget = { engine: 'sqlite', path: join(dir.path, 'livery.db') };
        const opened: SqlCmdb[] = [];
        current = {
          engine,
          target,
          open: () => opened[opened.push(openCmdbAt(target)) - 1]!,
          dump: () => {
            const c = openCmdbAt(target) as SqliteCmdb;
            try {
              return dumpTables(c.db);
            } finally {
              c.close();
            }
          },
        };
      } else {
        const db = createDatabase(pg!);
        const target: CmdbTarget = { engine: 'postgres', ...db };
        cleanup = () => {};
        current = { engine, target, open: () => openCmdbAt(target), dump: () => dumpPostgres(db) };
      }
    });
    afterEach(() => cleanup());
    body(() => current!);
  });
}
