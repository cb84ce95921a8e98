import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openCmdb, Writer, type BootStep, type SqliteCmdb as Cmdb, type WriteOp } from '../../src/cmdb/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('Writer: CMDB batches committed on a thread of their own', () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const open = (): { cmdb: Cmdb; writer: Writer; subnetId: number } => {
    const dir = tempDir();
    const path = join(dir.path, 'livery.db');
    const cmdb = openCmdb(path);
    const writer = new Writer({ engine: 'sqlite', path });
    cleanups.push(dir.cleanup, () => cmdb.close(), () => writer.close());
    const subnetId = cmdb.subnets.create({ name: 'lab', cidr: '10.9.0.0/24', pools: [{ start: '10.9.0.100', end: '10.9.0.200' }] }).id;
    return { cmdb, writer, subnetId };
  };
  const step = (mac: string, stage: string, discover = true): WriteOp => {
    const s: BootStep = { stage, mac, machineId: null, imageId: null, discover, door: 'dhcp', detail: { firmware: 'bios' }, at: Date.now() };
    return { kind: 'boot-step', step: s };
  };

  it('lands a batch in one transaction that the main connection then reads: discovery, boot events, lease', async () => {
    const { cmdb, writer, subnetId } = open();
    const mac = '52:54:00:00:00:01';
    const expiresAt = Date.now() + 3_600_000;
    await writer.commit([
      step(mac, 'dhcp-discover'),
      step(mac, 'dhcp-offer'),
      { kind: 'lease', lease: { ip: '10.9.0.100', mac, subnetId, state: 'bound', expiresAt, clientId: null, hostname: null }, now: Date.now() },
      { kind: 'event', event: { type: 'dhcp-nak', mac, detail: { message: 'x' }, at: 1_700_000_000_000 } },
    ]);
    const machine = cmdb.machines.byCanonicalMac(mac)!;
    expect(machine.state).toBe('discovered');
    expect(machine.lastSeenAt).not.toBeNull();
    expect(cmdb.events.forMac(mac).map((e) => [e.type, e.machineId])).toEqual([
      ['machine-discovered', machine.id],
      ['dhcp-discover', machine.id],
      ['dhcp-offer', machine.id],
      ['dhcp-nak', null],
    ]);
    expect(cmdb.events.forMac(mac).at(-1)!.at).toBe(new Date(1_700_000_000_000).toISOString());
    expect(cmdb.leases.get('10.9.0.100')).toMatchObject({ mac, state: 'bound', expiresAt });
    expect(cmdb.audit.list().map((a) => [a.actor, a.action, a.target])).toContainEqual(['livery:dhcp', 'machine.discover', mac]);
  });

  it('writes a batch of many clients set-wise yet exactly: events in order, details intact, known machines stamped, owners found', async () => {
    const { cmdb, writer } = open();
    const known = cmdb.machines.create({ macs: ['52:54:00:00:01:00'], hostname: 'known-1' });
    // Registered by another door before this batch: its steps ask for discovery but must not register it twice.
    const earlier = cmdb.machines.addDiscoveredMany(['52:54:00:00:01:01'], 1000)[0]!;
    const fresh = ['52:54:00:00:01:02', '52:54:00:00:01:03'];
    const detail = { firmware: 'efi', arch: 'x86_64', next: { kind: 'tftp', file: 'snponly.efi' }, userClass: ['iPXE'], relay: null, note: 'quote " and \u00e9' };
    const knownStep = (stage: string): WriteOp => ({ kind: 'boot-step', step: { stage, mac: known.macs[0]!, machineId: known.id, imageId: 'img-1', discover: true, door: 'dhcp', detail, at: seenAt } });
    const before = cmdb.events.lastId();
    // The events keep the time the door saw each step, not the time of their commit.
    const seenAt = Date.now() - 60_000;
    const outcome = await writer.commit([
      knownStep('dhcp-discover'),
      step(fresh[0]!, 'dhcp-discover'),
      step('52:54:00:00:01:01', 'dhcp-discover'),
      step(fresh[1]!, 'dhcp-discover', false), // policy says do not register: stays unowned
      step(fresh[0]!, 'dhcp-offer'),
      knownStep('dhcp-offer'),
    ]);
    const owner = cmdb.machines.idOfMac(fresh[0]!)!;
    // The commit says what it registered (only the machine it created) and the change counter then.
    expect(outcome.discovered).toEqual([[fresh[0], owner, Date.parse(cmdb.machines.get(owner).createdAt)]]);
    expect(outcome.changeCount).toBe(cmdb.machines.changeCount());
    expect(cmdb.machines.idOfMac(fresh[1]!)).toBeNull();
    expect(cmdb.events.tail(before).map((e) => [e.type, e.mac, e.machineId])).toEqual([
      ['machine-discovered', fresh[0], owner],
      ['dhcp-discover', known.macs[0], known.id],
      ['dhcp-discover', fresh[0], owner],
      ['dhcp-discover', '52:54:00:00:01:01', earlier],
      ['dhcp-discover', fresh[1], null],
      ['dhcp-offer', fresh[0], owner],
      ['dhcp-offer', known.macs[0], known.id],
    ]);
    const knownEvents = cmdb.events.forMac(known.macs[0]!);
    expect(knownEvents.map((e) => [e.imageId, e.detail, e.at])).toEqual([['img-1', detail, new Date(seenAt).toISOString()], ['img-1', detail, new Date(seenAt).toISOString()]]);
    expect(cmdb.machines.get(known.id).lastSeenAt).not.toBeNull();
    expect(Date.parse(cmdb.machines.get(earlier).lastSeenAt!)).toBeGreaterThan(1000);
    expect(cmdb.audit.list().filter((a) => a.action === 'machine.discover').map((a) => a.target)).toEqual([fresh[0]]);
  });

  it('rolls a failing batch back whole and says why; the next batch still commits', async () => {
    const { cmdb, writer } = open();
    const failing = writer.commit([
      step('52:54:00:00:00:02', 'dhcp-discover'),
      // No subnet 999: the lease's foreign key fails, after the step above was written.
      { kind: 'lease', lease: { ip: '10.9.0.101', mac: '52:54:00:00:00:02', subnetId: 999, state: 'bound', expiresAt: Date.now(), clientId: null, hostname: null }, now: Date.now() },
    ]);
    await expect(failing).rejects.toThrow(/CMDB write failed and was rolled back: FOREIGN KEY/);
    expect(cmdb.machines.byCanonicalMac('52:54:00:00:00:02')).toBeNull();
    expect(cmdb.events.forMac('52:54:00:00:00:02')).toEqual([]);
    await writer.commit([step('52:54:00:00:00:03', 'dhcp-discover')]);
    expect(cmdb.machines.byCanonicalMac('52:54:00:00:00:03')?.state).toBe('discovered');
  });

  it('waits out a write lock held past busy_timeout (a bulk job on another connection) instead of failing the batch', async () => {
    const { cmdb, writer } = open();
    await writer.commit([step('52:54:00:00:00:05', 'dhcp-discover')]); // the thread is up and its connection open
    const bulk = new Database(cmdb.db.name);
    cleanups.push(() => void bulk.close());
    bulk.exec('BEGIN IMMEDIATE');
    const committed = writer.commit([step('52:54:00:00:00:04', 'dhcp-discover')]);
    // Longer than the 5 s busy_timeout of every CMDB connection.
    await new Promise((r) => setTimeout(r, 6000));
    expect(cmdb.machines.byCanonicalMac('52:54:00:00:00:04')).toBeNull();
    bulk.exec('COMMIT');
    await committed;
    expect(cmdb.machines.byCanonicalMac('52:54:00:00:00:04')?.state).toBe('discovered');
  }, 30_000);

  it('commits batches in the order given, and close() waits for the queued ones', async () => {
    const { cmdb, writer, subnetId } = open();
    const mac = '52:54:00:00:00:04';
    const lease = (ip: string): WriteOp => ({ kind: 'lease', lease: { ip, mac, subnetId, state: 'bound', expiresAt: Date.now() + 1000, clientId: null, hostname: null }, now: Date.now() });
    // Each lease of the MAC replaces its previous one in the subnet: only the last may remain.
    const done = ['10.9.0.110', '10.9.0.111', '10.9.0.112'].map((ip) => writer.commit([lease(ip)]));
    await writer.close();
    await Promise.all(done);
    expect(cmdb.leases.list({ subnetId }).map((l) => l.ip)).toEqual(['10.9.0.112']);
    // Once closed it takes nothing more (a new thread then would keep the process alive).
    await expect(writer.commit([lease('10.9.0.113')])).rejects.toThrow(/writer is closed/);
    expect(cmdb.leases.get('10.9.0.113')).toBeNull();
  });

  it('starts transactions at least 20 ms apart: a batch handed over sooner waits out the window', async () => {
    const { cmdb, writer } = open();
    const mac = (i: number) => `52:54:00:00:02:${i.toString(16).padStart(2, '0')}`;
    await writer.commit([step(mac(0), 'dhcp-discover')]); // the thread is up
    await new Promise((r) => setTimeout(r, 20));
    // Ten batches, each handed over as soon as the one before is on disk: each waits out the
    // window the one before opened, so together they take at least nine windows.
    const start = performance.now();
    for (let i = 1; i <= 10; i++) await writer.commit([step(mac(i), 'dhcp-discover')]);
    expect(performance.now() - start).toBeGreaterThanOrEqual(9 * 20 - 1);
    for (let i = 0; i <= 10; i++) expect(cmdb.machines.idOfMac(mac(i))).not.toBeNull();
  });

  it('refuses an in-memory database, which another connection could never see', () => {
    expect(() => new Writer({ engine: 'sqlite', path: ':memory:' })).toThrow(/needs a database file/);
  });
});
