import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
import { openCmdbAt, type CmdbTarget, type SqlCmdb } from '../../src/cmdb/index.js';
import { SyncPg } from '../../src/cmdb/postgres/sync-pg.js';
import { dumpPostgres, dumpTables } from './db-snapshot.js';
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

function dump(target: CmdbTarget): Record<string, unknown[]> {
  const c = openCmdbAt(target);
  try {
    return dumpTables(c);
  } finally {
    c.close();
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
        current = {
          engine,
          target,
          open: () => openCmdbAt(target),
          dump: () => dump(target),
        };
      } else {
        const db = createDatabase(pg!);
        const target: CmdbTarget = { engine: 'postgres', ...db };
        // One client for the test's dumps: a test that checks nothing changed dumps twice per step.
        let client: SyncPg | null = null;
        cleanup = () => client?.close();
        current = { engine, target, open: () => openCmdbAt(target), dump: () => dumpPostgres((client ??= new SyncPg({ url: db.url, password: db.password }))) };
      }
    });
    afterEach(() => cleanup());
    body(() => current!);
  });
}
