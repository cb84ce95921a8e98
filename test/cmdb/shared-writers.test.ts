import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openCmdbAt, Writer, type BatchOutcome, type SqlCmdb, type WriteOp } from '../../src/cmdb/index.js';
import { WRITE_LOCK } from '../../src/cmdb/postgres/cmdb.js';
import { ID_ORDER_LOCK } from '../../src/cmdb/postgres/pg-db.js';
import { SyncPg } from '../../src/cmdb/postgres/sync-pg.js';
import type { CmdbTarget } from '../../src/cmdb/target.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { createDatabase } from '../helpers/test-database.js';

/**
 * Several nodes' DHCP writers on one PostgreSQL CMDB: their batches take the write lock shared
 * and commit side by side, so each statement must hold on its own (registrations, claims) and
 * event ids must still become visible in id order.
 */
describe.skipIf(POSTGRES_SKIP !== null)('DHCP writers side by side on PostgreSQL', () => {
  let pg: TestPostgres;
  let target: Extract<CmdbTarget, { engine: 'postgres' }>;
  let cmdb: SqlCmdb;
  let subnetId: number;
  const cleanups: (() => void | Promise<void>)[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await pg?.stop();
  }, 60_000);
  beforeEach(() => {
    target = { engine: 'postgres', ...createDatabase(pg) };
    cmdb = openCmdbAt(target);
    cleanups.push(() => cmdb.close());
    subnetId = cmdb.subnets.create({ name: 'lab', cidr: '10.9.0.0/16', pools: [{ start: '10.9.1.0', end: '10.9.9.255' }] }).id;
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const writer = (): Writer => {
    const w = new Writer(target);
    cleanups.push(() => w.close());
    return w;
  };
  /** A connection of the test's own, outside the CMDB: to hold locks and look at the server. */
  const connect = (): SyncPg => {
    const c = new SyncPg({ url: target.url, password: target.password, poolSize: 1 });
    cleanups.push(() => c.close());
    return c;
  };
  const discover = (mac: string): WriteOp => ({
    kind: 'boot-step',
    step: { stage: 'dhcp-discover', mac, machineId: null, imageId: null, discover: true, door: 'dhcp', detail: {}, at: Date.now() },
  });
  const claim = (ip: string, mac: string): WriteOp => ({
    kind: 'lease',
    lease: { ip, mac, subnetId, state: 'bound', expiresAt: Date.now() + 3_600_000, clientId: null, hostname: null },
    now: Date.now(),
  });
  const event = (mac: string, n: number): WriteOp => ({ kind: 'event', event: { type: 'dhcp-request', mac, detail: { n }, at: Date.now() } });
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  /** Waits (bounded) until another connection of this database waits for a lock of `kind` (pg_stat_activity's wait_event). */
  const untilWaiting = async (probe: SyncPg, kind: 'advisory' | 'transactionid') => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const waiting = probe.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = $1",
        [kind],
      ).rows[0]!.n;
      if (waiting > 0) return;
      if (Date.now() > deadline) throw new Error(`no connection came to wait for a ${kind} lock within 30 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('two writers commit overlapping batches at once: one machine per MAC, one holder per address, every event read in id order', async () => {
    const [a, b] = [writer(), writer()];
    const rounds = 25;
    const shared = 3;
    let writing = true;
    const read: number[] = [];
    // A reader following the log by id cursor while the batches commit, as an SSE stream does.
    const reader = (async () => {
      let cursor = cmdb.events.lastId();
      for (;;) {
        const done = !writing;
        for (let page = cmdb.events.tail(cursor); page.length > 0; page = cmdb.events.tail(cursor)) {
          read.push(...page.map((e) => e.id));
          cursor = page.at(-1)!.id;
        }
        if (done) return;
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const outcomes: [BatchOutcome, BatchOutcome][] = [];
    for (let r = 0; r < rounds; r++) {
      const both = `52:54:00:10:00:${hex(r)}`;
      // The same addresses claimed by a MAC of each writer, in opposite orders.
      const order = Array.from({ length: shared }, (_, i) => i);
      const batch = (side: string, order: number[]): WriteOp[] => [
        discover(both),
        ...order.map((i) => claim(`10.9.${1 + i}.${r}`, `52:54:00:${side}:${hex(i)}:${hex(r)}`)),
        ...Array.from({ length: 40 }, (_, n) => event(both, n)),
      ];
      outcomes.push(await Promise.all([a.commit(batch('aa', order)), b.commit(batch('bb', [...order].reverse()))]));
    }
    writing = false;
    await reader;

    for (let r = 0; r < rounds; r++) {
      const both = `52:54:00:10:00:${hex(r)}`;
      const owner = cmdb.machines.idOfMac(both)!;
      // Registered once: by one of the two batches (the other found it, or lost the race to it).
      expect(outcomes[r]!.flatMap((o) => o.discovered).map(([mac, id]) => [mac, id])).toEqual([[both, owner]]);
      // Both batches' discovery steps name the one owner.
      expect(cmdb.events.forMac(both, 1000).filter((e) => e.type === 'dhcp-discover').map((e) => e.machineId)).toEqual([owner, owner]);
      for (let i = 0; i < shared; i++) {
        const ip = `10.9.${1 + i}.${r}`;
        const held = cmdb.leases.get(ip)!;
        const refused = outcomes[r]!.flatMap((o) => o.refused).filter((l) => l.ip === ip);
        // The claim that lost is refused, and told who holds the address.
        expect(refused.map((l) => l.mac)).toEqual([held.mac]);
        expect([`52:54:00:aa:${hex(i)}:${hex(r)}`, `52:54:00:bb:${hex(i)}:${hex(r)}`]).toContain(held.mac);
      }
    }
    // No machine left over from a lost registration.
    expect(cmdb.machines.count()).toBe(rounds);
    expect(cmdb.events.recent(10_000, { types: ['machine-discovered'] })).toHaveLength(rounds);
    // The reader saw every event, none skipped.
    const all = cmdb.events.tail(0, 100_000).map((e) => e.id);
    expect(all.filter((id) => id > (read[0] ?? 0) - 1)).toHaveLength(rounds * 2 * 41 + rounds);
    expect(read).toEqual(all.slice(all.indexOf(read[0]!)));
    expect(read.length).toBe(all.length);
  }, 300_000);

  it('a MAC registered by a transaction beside the batch goes to that machine; the batch stamps it as seen and adds none', async () => {
    const w = writer();
    await w.commit([discover('52:54:00:20:00:00')]); // the thread and its connection are up
    const mac = '52:54:00:20:00:01';
    const other = connect();
    other.begin();
    other.query('SELECT pg_advisory_xact_lock_shared($1)', [WRITE_LOCK]);
    const id = other.query<{ id: number }>("INSERT INTO machines (state, created_at, updated_at) VALUES ('discovered', 1, 1) RETURNING id").rows[0]!.id;
    other.query('INSERT INTO machine_macs (mac, machine_id, position) VALUES ($1, $2, 0)', [mac, id]);
    const committed = w.commit([discover(mac), event(mac, 1)]);
    // The batch's insert of the MAC waits on the other transaction's: the race is on.
    await untilWaiting(connect(), 'transactionid');
    other.commit();
    const outcome = await committed;
    expect(outcome.discovered).toEqual([]);
    expect(cmdb.machines.idOfMac(mac)).toBe(id);
    expect(cmdb.machines.count()).toBe(2);
    expect(cmdb.machines.get(id).lastSeenAt).not.toBeNull();
    expect(cmdb.events.forMac(mac).map((e) => [e.type, e.machineId])).toEqual([
      ['dhcp-discover', id],
      ['dhcp-request', null],
    ]);
  }, 120_000);

  it('a batch taking event ids waits until ids taken before it are committed', async () => {
    const w = writer();
    await w.commit([discover('52:54:00:30:00:00')]);
    const before = cmdb.events.lastId();
    const other = connect();
    other.begin();
    other.query('SELECT pg_advisory_xact_lock_shared($1)', [WRITE_LOCK]);
    other.query('SELECT pg_advisory_xact_lock($1)', [ID_ORDER_LOCK]);
    const first = other.query<{ id: number }>("INSERT INTO events (at, type, detail) VALUES (1, 'first', '{}') RETURNING id").rows[0]!.id;
    const committed = w.commit([event('52:54:00:30:00:01', 1), event('52:54:00:30:00:01', 2)]);
    await untilWaiting(connect(), 'advisory');
    // Nothing past `before` is readable yet: a reader's cursor cannot pass the uncommitted id.
    expect(cmdb.events.tail(before)).toEqual([]);
    other.commit();
    await committed;
    const ids = cmdb.events.tail(before).map((e) => e.id);
    expect(ids[0]).toBe(first);
    expect(ids).toHaveLength(3);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
  }, 120_000);

  it('a batch commits while another transaction holds the write lock shared; an exclusive write waits for that one', async () => {
    const w = writer();
    const other = connect();
    other.begin();
    other.query('SELECT pg_advisory_xact_lock_shared($1)', [WRITE_LOCK]);
    other.query("INSERT INTO nodes (name, url, version, host, data_dir, pid, dhcp, started_at, heartbeat_at) VALUES ('beside', 'http://x', '1', 'h', '/d', 1, 0, 1, 1)");
    await w.commit([discover('52:54:00:40:00:01')]);
    expect(cmdb.machines.idOfMac('52:54:00:40:00:01')).not.toBeNull();
    // An API-side write takes the lock exclusive: it runs only after the other transaction ended, and sees its row.
    let settled = false;
    const exclusive = cmdb.soon(() => cmdb.nodes.list().map((n) => n.name)).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    other.commit();
    expect(await exclusive).toContain('beside');
  }, 120_000);

  it('a batch waits while an exclusive write holds the lock', async () => {
    const w = writer();
    await w.commit([discover('52:54:00:50:00:00')]);
    const other = connect();
    other.begin();
    other.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK]);
    const committed = w.commit([discover('52:54:00:50:00:01')]);
    await untilWaiting(connect(), 'advisory');
    expect(cmdb.machines.idOfMac('52:54:00:50:00:01')).toBeNull();
    other.commit();
    await committed;
    expect(cmdb.machines.idOfMac('52:54:00:50:00:01')).not.toBeNull();
  }, 120_000);
});
