import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CmdbError, openCmdb, type SqlCmdb, type SqliteCmdb as Cmdb } from '../../src/cmdb/index.js';
import { describeEngines } from '../helpers/cmdb-engines.js';
import { tokenSecret } from '../helpers/server.js';
import { importMachines, ImportError, type ImportRow } from '../../src/cmdb/import.js';
import { MIGRATIONS } from '../../src/cmdb/migrations.js';
import { tempDir } from '../helpers/tmp.js';

let dir: ReturnType<typeof tempDir>;
let cmdb: Cmdb;
const file = () => join(dir.path, 'livery.db');

beforeEach(() => {
  dir = tempDir();
  cmdb = openCmdb(file());
});
afterEach(() => {
  cmdb.close();
  dir.cleanup();
});

describe('CMDB file', () => {
  it('migrates an empty file and keeps data across reopen', () => {
    expect(cmdb.schemaVersion()).toBe(MIGRATIONS.length);
    expect(cmdb.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(cmdb.db.pragma('foreign_keys', { simple: true })).toBe(1);
    cmdb.machines.create({ macs: ['52-54-00-12-34-56'], hostname: 'node1', labels: { rack: 'r1' } });
    cmdb.close();
    cmdb = openCmdb(file());
    expect(cmdb.schemaVersion()).toBe(MIGRATIONS.length);
    const m = cmdb.machines.get('5254.0012.3456');
    expect(m.hostname).toBe('node1');
    expect(m.macs).toEqual(['52:54:00:12:34:56']);
    expect(cmdb.integrityCheck()).toBe('ok');
  });

  it('migration 11 lets a machine pin an image id not here yet, keeping every row and the other foreign keys', () => {
    cmdb.close();
    const path = join(dir.path, 'schema10.db');
    const old = new Database(path);
    old.pragma('foreign_keys = ON');
    old.unsafeMode(true);
    for (const sql of MIGRATIONS.slice(0, 10)) old.exec(sql);
    old.pragma('user_version = 10');
    const present = '0f0e0d0c-0b0a-4908-8706-050403020100';
    const absent = '1a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d';
    old.prepare("INSERT INTO images (id, name, version, os, arch, created_at, published_at, manifest) VALUES (?, 'web', '1', 'd', 'amd64', '2026-01-01T00:00:00Z', 0, ?)").run(present, JSON.stringify({ artifacts: [] }));
    const machine = old.prepare("INSERT INTO machines (hostname, state, image_id, created_at, updated_at) VALUES (?, 'registered', ?, 0, 0)");
    machine.run('here', present);
    old.prepare("INSERT INTO machine_macs (mac, machine_id, position) VALUES ('52:54:00:28:00:01', 1, 0)").run();
    // Schema 10 holds the foreign key: a pin to an image not here cannot be stored.
    expect(() => machine.run('early', absent)).toThrow(/FOREIGN KEY constraint failed/);
    old.close();

    cmdb = openCmdb(path);
    expect(cmdb.schemaVersion()).toBe(MIGRATIONS.length);
    const sql = cmdb.db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'machines'").pluck().get() as string;
    expect(sql).toMatch(/\bimage_id TEXT,/);
    expect(sql).not.toContain('REFERENCES images');
    expect(sql).toContain('subnet_id INTEGER REFERENCES subnets(id)');
    expect(cmdb.machines.get('here').image.id).toBe(present);
    expect(cmdb.machines.get('52:54:00:28:00:01').hostname).toBe('here');
    expect(cmdb.machines.create({ macs: ['52:54:00:28:00:02'], hostname: 'early', image: { id: absent } }).image.id).toBe(absent);
    expect(() => cmdb.machines.create({ macs: ['52:54:00:28:00:03'], image: { id: 'web-1' } })).toThrow(/image\.id: no image with id web-1 here, and it is not an image id/);
    expect(() => cmdb.images.remove(present)).toThrow(/still in use: pinned by machine here/);
    expect(cmdb.integrityCheck()).toBe('ok');
    expect(cmdb.db.pragma('foreign_key_check')).toEqual([]);
  });

  it('refuses a database from a newer livery', () => {
    cmdb.db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    cmdb.close();
    expect(() => (cmdb = openCmdb(file()))).toThrow(/newer than this livery/);
    cmdb = openCmdb(':memory:');
  });
});

describeEngines('the stores', (rig) => {
  let cmdb: SqlCmdb;
  beforeEach(() => {
    cmdb = rig().open();
  });
  afterEach(() => cmdb.close());

  /** Asserts that fn throws a CmdbError matching `message` and that no table changed. */
  function rejects(fn: () => unknown, message: RegExp) {
    const before = rig().dump();
    expect(fn).toThrow(message);
    expect(rig().dump()).toEqual(before);
  }

describe('machines', () => {
  beforeEach(() => {
    cmdb.subnets.create({ cidr: '10.0.0.0/24', name: 'lan', gateway: '10.0.0.1', pools: [{ start: '10.0.0.100', end: '10.0.0.199' }] });
    cmdb.machines.create({ macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'], hostname: 'a', ip: '10.0.0.10' });
  });

  it('finds a machine by any of its MACs, its hostname or its id', () => {
    const m = cmdb.machines.get('52-54-00-00-00-02');
    expect(m.macs).toEqual(['52:54:00:00:00:01', '52:54:00:00:00:02']);
    expect(cmdb.machines.get('A').id).toBe(m.id);
    expect(cmdb.machines.get(String(m.id)).hostname).toBe('a');
    expect(cmdb.machines.find('52:54:00:00:00:99')).toBeNull();
  });

  it('rejects bad input and leaves the database as it was', () => {
    rejects(() => cmdb.machines.create({ macs: ['nope'] }), /macs: invalid MAC address "nope"/);
    rejects(() => cmdb.machines.create({ macs: [] }), /macs: at least one MAC/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:02'] }), /MAC 52:54:00:00:00:02 already belongs to machine a/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], hostname: 'A' }), /hostname a is already taken/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], hostname: 'bad_name' }), /hostname: invalid hostname/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], ip: '10.0.0.150' }), /inside the dynamic pool of subnet lan/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], ip: '10.0.0.10' }), /already reserved for machine a/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], ip: '10.0.0.255' }), /network or broadcast/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], ip: '10.1.0.5', subnet: 'lan' }), /outside its subnet lan/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], ip: '10.0.0.300' }), /ip: invalid IPv4 address/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], labels: { 'bad key': 'x' } }), /invalid label key/);
    rejects(() => cmdb.machines.create({ macs: ['52:54:00:00:00:03'], image: { id: 'no-such' } }), /no image with id no-such/);
    rejects(() => cmdb.machines.update('a', { macs: ['52:54:00:00:00:09', 'x'] }), /invalid MAC address "x"/);
    rejects(() => cmdb.machines.update('ghost', { site: 'x' }), /machine ghost not found/);
  });

  it('filters by label, site and state, and pages by id', () => {
    for (let i = 0; i < 5; i++) {
      cmdb.machines.create({ macs: [`52:54:00:00:01:0${i}`], site: i % 2 ? 'ams' : 'fra', labels: { rack: `r${i % 2}` }, state: i === 4 ? 'discovered' : 'registered' });
    }
    expect(cmdb.machines.list({ labels: { rack: 'r1' } }).length).toBe(2);
    expect(cmdb.machines.list({ site: 'fra' }).length).toBe(3);
    expect(cmdb.machines.list({ state: 'discovered' }).length).toBe(1);
    const page1 = cmdb.machines.list({ limit: 4 });
    const page2 = cmdb.machines.list({ limit: 4, after: page1[3]!.id });
    expect(page1.length + page2.length).toBe(6);
    expect(new Set([...page1, ...page2].map((m) => m.id)).size).toBe(6);
  });

  it('retires without forgetting the MAC', () => {
    const m = cmdb.machines.retire('a');
    expect(m.state).toBe('retired');
    expect(m.ip).toBeNull();
    expect(cmdb.machines.get('52:54:00:00:00:01').state).toBe('retired');
  });
});

describe('subnets', () => {
  it('checks CIDR, pools, gateway and reservations', () => {
    rejects(() => cmdb.subnets.create({ cidr: '10.0.0.1/24' }), /cidr: "10.0.0.1\/24" is not a CIDR block/);
    rejects(() => cmdb.subnets.create({ cidr: 'banana' }), /is not a CIDR block/);
    rejects(() => cmdb.subnets.create({ cidr: '10.0.0.0/24', pools: [{ start: '10.0.1.5', end: '10.0.1.9' }] }), /outside the usable hosts/);
    rejects(
      () => cmdb.subnets.create({ cidr: '10.0.0.0/24', pools: [{ start: '10.0.0.5', end: '10.0.0.50' }, { start: '10.0.0.40', end: '10.0.0.60' }] }),
      /pools\[1\]: overlaps pools\[0\]/,
    );
    rejects(() => cmdb.subnets.create({ cidr: '10.0.0.0/24', gateway: '10.0.0.7', pools: [{ start: '10.0.0.5', end: '10.0.0.9' }] }), /contains the gateway/);
    rejects(() => cmdb.subnets.create({ cidr: '10.0.0.0/24', policy: 'default-image' }), /defaultImage.name: is required/);
    cmdb.subnets.create({ cidr: '10.0.0.0/24' });
    rejects(() => cmdb.subnets.create({ cidr: '10.0.0.128/25', name: 'other' }), /overlaps subnet 10.0.0.0\/24/);
    cmdb.machines.create({ macs: ['52:54:00:00:00:01'], ip: '10.0.0.20' });
    rejects(() => cmdb.subnets.update('10.0.0.0/24', { pools: [{ start: '10.0.0.10', end: '10.0.0.30' }] }), /pool contains 10.0.0.20/);
    expect(cmdb.subnets.containing(0x0a000063)?.cidr).toBe('10.0.0.0/24');
    expect(cmdb.subnets.containing(0x0a010001)).toBeNull();
  });
});

describe('lease claims', () => {
  const lease = (mac: string, at: number, state: 'bound' | 'released' = 'bound') => ({ ip: '10.0.0.100', mac, subnetId: 1, state, expiresAt: at + 60_000, clientId: null, hostname: null });
  const A = '52:54:00:00:0a:01';
  const B = '52:54:00:00:0b:01';

  beforeEach(() => {
    cmdb.subnets.create({ cidr: '10.0.0.0/24', name: 'lan', pools: [{ start: '10.0.0.100', end: '10.0.0.199' }] });
  });

  it("refuses another MAC's live lease and writes nothing; the holder's own renewal, a released or expired row, or a reservation wins", () => {
    const t = 1_000_000;
    expect(cmdb.tx(() => cmdb.leases.claim(lease(A, t), t))).toBe(true);
    const before = rig().dump();
    expect(cmdb.tx(() => cmdb.leases.claim(lease(B, t + 1), t + 1))).toBe(false);
    expect(rig().dump()).toEqual(before);
    expect(cmdb.leases.stored('10.0.0.100')).toMatchObject({ mac: A, state: 'bound', updatedAt: t });
    expect(cmdb.tx(() => cmdb.leases.claim(lease(A, t + 2), t + 2))).toBe(true);
    // Expired: A's lease ended at t + 2 + 60 s.
    expect(cmdb.tx(() => cmdb.leases.claim(lease(B, t + 62_002), t + 62_002))).toBe(true);
    expect(cmdb.tx(() => cmdb.leases.claim(lease(A, t + 62_003), t + 62_003))).toBe(false);
    expect(cmdb.tx(() => cmdb.leases.claim(lease(A, t + 62_004), t + 62_004, true))).toBe(true);
    expect(cmdb.tx(() => cmdb.leases.setState('10.0.0.100', A, 'released', t + 62_005, t + 62_005))).toBe(true);
    expect(cmdb.tx(() => cmdb.leases.claim(lease(B, t + 62_006), t + 62_006))).toBe(true);
    expect(cmdb.leases.changedSince(t + 62_005).map((l) => [l.mac, l.updatedAt])).toEqual([[B, t + 62_006]]);
  });
});

describe('tokens', () => {
  it('stores only a hash and verifies in constant time', () => {
    const { token, record } = cmdb.tokens.create('ci', 'operator');
    expect(token).toMatch(/^lvy_[0-9a-f]{12}_/);
    expect(JSON.stringify(rig().dump())).not.toContain(tokenSecret(token));
    expect(cmdb.tokens.verify(token)?.role).toBe('operator');
    expect(cmdb.tokens.verify(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'))).toBeNull();
    cmdb.tokens.revoke(record.id);
    expect(cmdb.tokens.verify(token)).toBeNull();
  });
});

const mac = (i: number) => `0a:00:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
const rows = (n: number): ImportRow[] => Array.from({ length: n }, (_, i) => ({ line: i + 2, input: { macs: [mac(i)], hostname: `n-${i}` } }));

describe('machine import: checked before the write lock, applied all or nothing', () => {
  it('aborts with a conflict, writing nothing, when a MAC it checked is registered before it applies', async () => {
    const before = rig().dump();
    const importing = importMachines(cmdb, 'ops', rows(5_000));
    // The check yields to the event loop between chunks of rows: a DHCP writer (its own
    // connection) registers the first row's MAC, already checked as new, meanwhile.
    await new Promise((r) => setImmediate(r));
    const dhcp = rig().open();
    const registered = dhcp.tx(() => dhcp.machines.addDiscoveredMany([mac(0)], 0)[0]!);
    dhcp.close();
    const err = await importing.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CmdbError);
    expect((err as CmdbError).kind).toBe('conflict');
    expect((err as Error).message).toBe(`import: MAC ${mac(0)} was given to machine ${registered} meanwhile; nothing was changed, retry the import`);
    const after = rig().dump();
    expect(after.machines).toEqual([...before.machines!, expect.objectContaining({ id: registered })]);
    expect(after.audit_log).toEqual(before.audit_log);
  });

  it('aborts when a machine it updates is edited before it applies', async () => {
    const m = cmdb.machines.create({ macs: [mac(0)], hostname: 'old' });
    const importing = importMachines(cmdb, 'ops', [{ line: 2, input: { macs: [mac(0)], hostname: 'renamed' } }, ...rows(2_000).slice(1)]);
    await new Promise((r) => setImmediate(r));
    const other = rig().open();
    other.machines.update(m.id, { site: 'moved' });
    other.close();
    await expect(importing).rejects.toThrow(`import: machine ${m.id} was changed meanwhile`);
    expect(cmdb.machines.count()).toBe(1);
    expect(cmdb.machines.get(m.id)).toMatchObject({ hostname: 'old', site: 'moved' });
  });

  it('checks each row against the rows before it in the same file', async () => {
    const before = rig().dump();
    const input: ImportRow[] = [
      { line: 2, input: { macs: [mac(1)], hostname: 'a', ip: '10.9.0.5' } },
      { line: 3, input: { macs: [mac(2), mac(1)], hostname: 'b' } },
      { line: 4, input: { macs: [mac(3)], hostname: 'A' } },
      { line: 5, input: { macs: [mac(4)], ip: '10.9.0.5' } },
    ];
    const err = (await importMachines(cmdb, 'ops', input).catch((e: unknown) => e)) as ImportError;
    expect(err).toBeInstanceOf(ImportError);
    expect(err.problems).toEqual([
      { line: 3, error: `macs: MAC ${mac(1)} already belongs to machine a` },
      { line: 4, error: 'hostname: hostname a is already taken' },
      { line: 5, error: 'ip: 10.9.0.5 is already reserved for machine a' },
    ]);
    expect(rig().dump()).toEqual(before);
  });

  it('creates and updates in one go, with one audit row, and moves the change counter as single writes do', async () => {
    const kept = cmdb.machines.create({ macs: [mac(0)], hostname: 'n-0' });
    const edited = cmdb.machines.create({ macs: [mac(1)], hostname: 'before' });
    const counter = cmdb.machines.changeCount();
    const result = await importMachines(cmdb, 'ops', [...rows(3), { line: 5, input: { macs: [mac(3), mac(4)], labels: { rack: 'r1' } } }]);
    expect(result).toEqual({ created: 2, updated: 1, unchanged: 1 });
    expect(cmdb.machines.get(kept.id).hostname).toBe('n-0');
    expect(cmdb.machines.get(edited.id).hostname).toBe('n-1');
    expect(cmdb.machines.find(mac(4))).toMatchObject({ macs: [mac(3), mac(4)], labels: { rack: 'r1' }, state: 'registered' });
    expect(cmdb.machines.find('n-2')).toMatchObject({ macs: [mac(2)], state: 'registered' });
    // Migration 3's triggers: the edited machine's row and its MACs (rewritten, as update() does),
    // and the second MAC of a new machine; nothing for the unchanged one. PostgreSQL's triggers
    // count statements, not rows: the counter moves, by however many.
    if (rig().engine === 'sqlite') expect(cmdb.machines.changeCount()).toBe(counter + 3);
    else expect(cmdb.machines.changeCount()).toBeGreaterThan(counter);
    expect(cmdb.audit.list().filter((a) => a.action === 'machine.import')).toEqual([
      expect.objectContaining({ actor: 'ops', target: '4 rows', detail: { created: 2, updated: 1, unchanged: 1 } }),
    ]);
  });
});
});
