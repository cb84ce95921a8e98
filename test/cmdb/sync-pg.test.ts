import { execFile } from 'node:child_process';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgError, SyncPg } from '../../src/cmdb/postgres/sync-pg.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls (bounded) until check() holds; the counters move on SyncPg's thread while this one sleeps. */
async function eventually(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The error a call throws (the test fails if it throws none). */
function thrown(fn: () => unknown): PgError {
  try {
    fn();
  } catch (err) {
    return err as PgError;
  }
  throw new Error('expected the call to throw');
}

describe.skipIf(POSTGRES_SKIP)(POSTGRES_SKIP ? `SyncPg tests skipped: ${POSTGRES_SKIP}` : 'SyncPg: synchronous PostgreSQL through a thread', () => {
  let db: TestPostgres;
  let a: SyncPg;
  let b: SyncPg;
  const open = (extra: Partial<ConstructorParameters<typeof SyncPg>[0]> = {}) => new SyncPg({ url: db.url, password: db.password, ...extra });

  beforeAll(async () => {
    db = await startPostgres();
    a = open({ channels: ['machines', 'leases'] });
    b = open();
    a.query('CREATE TABLE machine (id bigserial PRIMARY KEY, mac text NOT NULL CONSTRAINT machine_mac_unique UNIQUE, seen_ms int8, blob bytea)');
  });
  afterAll(async () => {
    a?.close();
    b?.close();
    await db?.stop();
  });

  it('binds parameters and gives int8 as numbers, text as strings, NULL as null, bytea as Buffers', () => {
    const now = Date.now();
    const inserted = a.query<{ id: number }>(
      'INSERT INTO machine (mac, seen_ms, blob) VALUES ($1, $2, $3), ($4, NULL, NULL) RETURNING id',
      ['52:54:00:00:00:01', now, Buffer.from([0, 1, 254, 255]), '52:54:00:00:00:02'],
    );
    expect(inserted.rowCount).toBe(2);
    expect(inserted.rows.map((r) => typeof r.id)).toEqual(['number', 'number']);
    const { rows } = b.query('SELECT id, mac, seen_ms, blob FROM machine WHERE mac = ANY($1) ORDER BY mac', [['52:54:00:00:00:01', '52:54:00:00:00:02']]);
    expect(rows).toEqual([
      { id: inserted.rows[0]!.id, mac: '52:54:00:00:00:01', seen_ms: now, blob: Buffer.from([0, 1, 254, 255]) },
      { id: inserted.rows[1]!.id, mac: '52:54:00:00:00:02', seen_ms: null, blob: null },
    ]);
    expect(Buffer.isBuffer(rows[0]!.blob)).toBe(true);
    expect(a.query('SELECT 9007199254740991::int8 AS max, -1::int8 AS neg').rows).toEqual([{ max: Number.MAX_SAFE_INTEGER, neg: -1 }]);
  });

  it('runs a named prepared statement once parsed, then again by its name', () => {
    const single = open({ poolSize: 1 });
    try {
      for (const n of [1, 2, 3]) expect(single.query('SELECT $1::int + 1 AS n', [n], 'add-one').rows).toEqual([{ n: n + 1 }]);
      const { rows } = single.query("SELECT statement, generic_plans + custom_plans AS runs FROM pg_prepared_statements WHERE name = 'add-one'");
      expect(rows).toEqual([{ statement: 'SELECT $1::int + 1 AS n', runs: 3 }]);
    } finally {
      single.close();
    }
  });

  it('commits a transaction whole, and a rolled-back one leaves nothing, as a second client sees', () => {
    const count = (mac: string) => b.query<{ n: number }>('SELECT count(*) AS n FROM machine WHERE mac = $1', [mac]).rows[0]!.n;
    a.begin();
    expect(a.inTransaction()).toBe(true);
    a.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:01:01']);
    expect(a.query('SELECT count(*) AS n FROM machine WHERE mac = $1', ['52:54:00:00:01:01']).rows).toEqual([{ n: 1 }]);
    expect(count('52:54:00:00:01:01')).toBe(0);
    expect(() => a.begin()).toThrow(/already open/);
    a.rollback();
    expect(a.inTransaction()).toBe(false);
    expect(count('52:54:00:00:01:01')).toBe(0);
    expect(() => a.commit()).toThrow(/no transaction is open/);

    a.begin();
    a.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:01:02']);
    a.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:01:03']);
    a.commit();
    expect(count('52:54:00:00:01:02') + count('52:54:00:00:01:03')).toBe(2);
  });

  it('a transaction the caller gave up on is rolled back, never joined by the next one', async () => {
    const db2 = open();
    try {
      // As if an earlier begin() had timed out on the caller's side and then gone through on the
      // thread: its request is in, its answer will be dropped.
      (db2 as unknown as { worker: Worker }).worker.postMessage({ id: 1_000_000, op: 'begin', tx: 1_000_000 });
      db2.begin();
      db2.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:03:01']);
      db2.rollback();
      db2.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:03:02']);
      const { rows } = b.query('SELECT mac FROM machine WHERE mac LIKE $1 ORDER BY mac', ['52:54:00:00:03:%']);
      expect(rows).toEqual([{ mac: '52:54:00:00:03:02' }]);
      // Nor is it left open, holding its locks and snapshot.
      const openTransactions = () => b.query<{ n: number }>("SELECT count(*) AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'").rows[0]!.n;
      await eventually(() => openTransactions() === 0, 'the given-up transaction to end');
    } finally {
      db2.close();
    }
  });

  it('rethrows a unique violation with its SQLSTATE, constraint and detail; the transaction then rolls back', () => {
    a.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:02:01']);
    a.begin();
    a.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:02:02']);
    const err = thrown(() => a.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:02:01']));
    expect(err).toBeInstanceOf(PgError);
    expect(err).toMatchObject({ code: '23505', constraint: 'machine_mac_unique', table: 'machine' });
    expect(err.detail).toBe('Key (mac)=(52:54:00:00:02:01) already exists.');
    expect(err.message).toMatch(/duplicate key value violates unique constraint "machine_mac_unique"/);
    expect(thrown(() => a.query('SELECT 1')).code).toBe('25P02'); // the transaction is aborted until rolled back
    a.rollback();
    expect(b.query('SELECT count(*) AS n FROM machine WHERE mac = $1', ['52:54:00:00:02:02']).rows).toEqual([{ n: 0 }]);
  });

  it('counts NOTIFYs per channel from another client, without a round trip, and none from a rolled-back transaction', async () => {
    const machines = a.notified('machines');
    const leases = a.notified('leases');
    for (let i = 0; i < 3; i++) b.query('SELECT pg_notify($1, $2)', ['machines', String(i)]);
    await eventually(() => a.notified('machines') === machines + 3, 'three notifications on machines');
    b.begin();
    b.query('NOTIFY machines');
    b.rollback();
    b.query('NOTIFY leases');
    // Notifications arrive in commit order: once the later one on leases is in, a rolled-back one would be too.
    await eventually(() => a.notified('leases') === leases + 1, 'the notification on leases');
    expect(a.notified('machines')).toBe(machines + 3);
    expect(() => a.notified('images')).toThrow(/not listening on channel 'images': the channels given were machines, leases/);
  });

  it('refuses a wrong password without showing it, and a URL without echoing it', () => {
    const err = thrown(() => open({ password: 'wrong-secret-4711' }));
    expect(err.code).toBe('28P01');
    expect(err.message).not.toContain('wrong-secret-4711');
    const bad = thrown(() => new SyncPg({ url: 'postgres//livery:hunter2@nowhere', password: 'x' }));
    expect(bad.message).toMatch(/database url: not a URL/);
    expect(bad.message).not.toContain('hunter2');
  });

  it('takes a password with characters a URL must escape', () => {
    const odd = "p@ss:w/rd%20?#ü'";
    a.query(`ALTER ROLE livery PASSWORD '${odd.replaceAll("'", "''")}'`);
    try {
      const other = open({ password: odd });
      expect(other.query('SELECT current_user AS me').rows).toEqual([{ me: 'livery' }]);
      other.close();
    } finally {
      a.query(`ALTER ROLE livery PASSWORD '${db.password}'`);
    }
  });

  it('a stalled server makes a call throw within its bound, naming the server; once it goes on, calls work', () => {
    const quick = open({ queryTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
    try {
      expect(quick.query('SELECT 1 AS n').rows).toEqual([{ n: 1 }]);
      db.freeze();
      const started = Date.now();
      let err: PgError;
      try {
        err = thrown(() => quick.query('SELECT 2 AS n'));
      } finally {
        db.thaw();
      }
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(err.message).toContain(`PostgreSQL at 127.0.0.1:${db.port}`);
      expect(err.message).not.toContain(db.password);
      expect(quick.query('SELECT 3 AS n').rows).toEqual([{ n: 3 }]);
    } finally {
      quick.close();
    }
  });

  it('PostgreSQL down: a call throws within its bound naming host:port; restarted: calls work and every counter moved', async () => {
    const quick = open({ queryTimeoutMs: 2_000, connectTimeoutMs: 2_000 });
    try {
      const before = [a.notified('machines'), a.notified('leases')];
      await db.kill();
      const started = Date.now();
      const err = thrown(() => quick.query('SELECT 1'));
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(err.message).toContain(`PostgreSQL at 127.0.0.1:${db.port}`);
      expect(err.message).not.toContain(db.password);
      expect(thrown(() => quick.begin()).message).toContain(`PostgreSQL at 127.0.0.1:${db.port}`);
      expect(quick.inTransaction()).toBe(false);
      await db.restart();
      expect(quick.query('SELECT count(*) > 0 AS kept FROM machine').rows).toEqual([{ kept: true }]);
      // The listener reconnects by itself and bumps each counter: NOTIFYs may have been missed meanwhile.
      await eventually(() => a.notified('machines') > before[0]! && a.notified('leases') > before[1]!, 'counters bumped by the reconnect');
      const machines = a.notified('machines');
      b.query('NOTIFY machines');
      await eventually(() => a.notified('machines') === machines + 1, 'a notification after the reconnect');
    } finally {
      quick.close();
    }
  });

  it('a transaction whose connection dies between statements fails its next call; rollback() accepts that, and the next call works', async () => {
    const quick = open({ queryTimeoutMs: 2_000, connectTimeoutMs: 2_000 });
    try {
      quick.begin();
      quick.query('INSERT INTO machine (mac) VALUES ($1)', ['52:54:00:00:04:01']);
      await db.kill();
      await sleep(300); // the connection's end reaches the thread while the transaction is idle
      quick.rollback();
      expect(quick.inTransaction()).toBe(false);
      await db.restart();
      expect(quick.query('SELECT count(*) AS n FROM machine WHERE mac = $1', ['52:54:00:00:04:01']).rows).toEqual([{ n: 0 }]);
      quick.begin();
      quick.query('SELECT 1');
      await db.kill();
      await sleep(300);
      expect(thrown(() => quick.query('SELECT 1')).message).toContain(`PostgreSQL at 127.0.0.1:${db.port}`);
      quick.rollback();
      await db.restart();
      expect(quick.query('SELECT 1 AS n').rows).toEqual([{ n: 1 }]);
    } finally {
      quick.close();
    }
  });

  it('close() ends the thread: a process that opened, used and closed a SyncPg exits by itself', async () => {
    const moduleUrl = new URL('../../src/cmdb/postgres/sync-pg.ts', import.meta.url).href;
    const script = `import { SyncPg } from ${JSON.stringify(moduleUrl)};
      const db = new SyncPg({ url: process.env.PG_URL, password: process.env.PG_PASSWORD, channels: ['machines'] });
      console.log(db.query('SELECT 40 + 2 AS n').rows[0].n);
      db.close();
      try { db.query('SELECT 1'); } catch (err) { console.log(err.message); }`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { timeout: 60_000, env: { ...process.env, PG_URL: db.url, PG_PASSWORD: db.password } },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    expect(out).toBe('42\nSyncPg is closed\n');
  });
});
