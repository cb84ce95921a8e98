import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDb } from '../../src/cmdb/postgres/pg-db.js';
import { SyncPg } from '../../src/cmdb/postgres/sync-pg.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from '../helpers/postgres.js';

describe.skipIf(POSTGRES_SKIP)(POSTGRES_SKIP ? `PgDb tests skipped: ${POSTGRES_SKIP}` : 'PgDb: which statements PostgreSQL keeps prepared', () => {
  let pg: TestPostgres;
  let client: SyncPg;
  let db: PgDb;
  /** The statements prepared on the pool's one connection, by their text. */
  const preparedTexts = () => (client.query('SELECT statement FROM pg_prepared_statements').rows as { statement: string }[]).map((r) => r.statement);

  beforeAll(async () => {
    pg = await startPostgres();
    // One connection: every statement runs where pg_prepared_statements can see it.
    client = new SyncPg({ url: pg.url, password: pg.password, poolSize: 1 });
    db = new PgDb(client);
    client.query('CREATE TABLE t (id bigint PRIMARY KEY, label text NOT NULL)');
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await pg?.stop();
  }, 60_000);

  it('sends a text run once unprepared, and prepares it from its second run on', () => {
    const text = 'SELECT label FROM t WHERE id = $1';
    db.prepare('SELECT label FROM t WHERE id = ?').get(1);
    expect(preparedTexts()).not.toContain(text);
    // Another statement object with the same SQL, as a store that prepares per call makes one.
    db.prepare('SELECT label FROM t WHERE id = ?').get(2);
    expect(preparedTexts()).toContain(text);
  });

  it('numbers named and positional parameters, and runs statements built per call the same as kept ones', () => {
    const insert = db.prepare('INSERT INTO t (id, label) VALUES (@id, @label)');
    for (let id = 10; id < 13; id++) insert.run({ id, label: `n${id}` });
    expect(db.prepare('SELECT count(*) AS n FROM t WHERE id >= ? AND label LIKE ?').pluck().get(10, 'n%')).toBe(3);
    expect(preparedTexts()).toContain('INSERT INTO t (id, label) VALUES ($1, $2)');
    expect(() => insert.run({ id: 20 })).toThrow(/no value for @label/);
  });
});
