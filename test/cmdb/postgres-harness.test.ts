import { existsSync, readFileSync, statSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_SKIP, startPostgres, type TestPostgres, urlWithPassword } from '../helpers/postgres.js';

async function ask<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe.skipIf(POSTGRES_SKIP)(POSTGRES_SKIP ? `PostgreSQL harness skipped: ${POSTGRES_SKIP}` : 'the throwaway PostgreSQL of the tests', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await startPostgres();
  });
  afterAll(async () => {
    await db?.stop();
  });

  it('serves the livery database to the livery role with its password, on loopback TCP and on the Unix socket', async () => {
    expect(readFileSync(db.passwordFile, 'utf8')).toBe(db.password);
    expect(statSync(db.passwordFile).mode & 0o777).toBe(0o600);
    for (const url of [db.url, db.socketUrl]) {
      const [row] = await ask<{ user: string; db: string }>(urlWithPassword(url, db.password), 'SELECT current_user AS user, current_database() AS db');
      expect(row).toEqual({ user: 'livery', db: 'livery' });
    }
    const [settings] = await ask<{ listen: string; fsync: string }>(
      urlWithPassword(db.url, db.password),
      "SELECT current_setting('listen_addresses') AS listen, current_setting('fsync') AS fsync",
    );
    expect(settings).toEqual({ listen: '127.0.0.1', fsync: 'on' });
  });

  it('refuses a wrong password (scram authentication, not trust)', async () => {
    for (const url of [db.url, db.socketUrl]) {
      await expect(ask(urlWithPassword(url, 'not-the-password'), 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
    }
  });

  it('survives a kill -9 of the postmaster: connections fail while it is down, and a restart keeps committed rows', async () => {
    const url = urlWithPassword(db.url, db.password);
    await ask(url, 'CREATE TABLE kept (n int)');
    await ask(url, 'INSERT INTO kept VALUES (42)');
    await db.kill();
    await expect(ask(url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    await db.restart();
    expect(await ask(url, 'SELECT n FROM kept')).toEqual([{ n: 42 }]);
    await db.halt();
    await expect(ask(url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    await db.restart();
    expect(await ask(url, 'SELECT count(*)::int AS c FROM kept')).toEqual([{ c: 1 }]);
  });

  it('stop() removes the cluster', async () => {
    const other = await startPostgres();
    await other.stop();
    expect(existsSync(other.dataDir)).toBe(false);
    expect(existsSync(other.socketDir)).toBe(false);
  });
});
