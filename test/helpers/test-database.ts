import { readFileSync } from 'node:fs';
import { openCmdb, openCmdbAt, type SqlCmdb } from '../../src/cmdb/index.js';
import { WRITE_LOCK } from '../../src/cmdb/postgres/cmdb.js';
import { resolveConfig } from '../../src/config/index.js';
import { cmdbTarget } from '../../src/daemon/database.js';
import { SyncPg } from '../../src/cmdb/postgres/sync-pg.js';

/**
 * Set by the PostgreSQL run of the server tests (vitest.pg.config.ts, test/helpers/postgres-run.ts):
 * the cluster every livery of the run keeps its CMDB in, through its Unix socket (reachable from
 * the tests' network namespaces, which have loopbacks of their own).
 */
export const POSTGRES_RUN_ENV = 'LIVERY_TEST_POSTGRES';

export interface TestDatabase {
  /** The `database` config section a livery of this test uses (empty: SQLite in its data dir). */
  config: { url?: string; passwordFile?: string };
  /** Opens the CMDB that livery uses, from the test's side. */
  open(): SqlCmdb;
  /** Takes the CMDB's write lock on a connection of its own, as a stalled disk or a long bulk job would hold it; release() lets go. */
  holdWriteLock(): { release(): void };
}

/** The CMDB a test's livery keeps: SQLite in `dataDir`, or a new database of the run's PostgreSQL cluster. */
export function testDatabase(dataDir: string): TestDatabase {
  const run = process.env[POSTGRES_RUN_ENV];
  let config: TestDatabase['config'] = {};
  if (run) {
    const { url, passwordFile } = JSON.parse(run) as { url: string; passwordFile: string };
    config = { url: createDatabase({ url, password: readFileSync(passwordFile, 'utf8') }).url, passwordFile };
  }
  const target = () => cmdbTarget(resolveConfig({ dataDir, database: config }));
  return {
    config,
    open: () => openCmdbAt(target()),
    holdWriteLock: () => {
      const t = target();
      if (t.engine === 'sqlite') {
        const blocker = openCmdb(t.path);
        blocker.db.exec('BEGIN IMMEDIATE');
        return { release: () => blocker.close() };
      }
      const client = new SyncPg({ url: t.url, password: t.password });
      client.query('SELECT pg_advisory_lock($1)', [WRITE_LOCK]);
      return { release: () => client.close() };
    },
  };
}

let databases = 0;

/** A new, empty database on the cluster at `admin`, for one test or one server. */
export function createDatabase(admin: { url: string; password: string }): { url: string; password: string } {
  const name = `t${process.pid}_${++databases}`;
  const client = new SyncPg({ url: admin.url, password: admin.password });
  try {
    client.query(`CREATE DATABASE ${name}`);
  } finally {
    client.close();
  }
  const url = new URL(admin.url);
  url.pathname = `/${name}`;
  return { url: url.toString(), password: admin.password };
}

