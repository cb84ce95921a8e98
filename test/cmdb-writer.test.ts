import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openCmdb, Writer, type BootStep, type Cmdb, type WriteOp } from '../src/cmdb/index.js';
import { tempDir } from './helpers/tmp.js';

describe('Writer: CMDB batches committed on a thread of their own', () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const open = (): { cmdb: Cmdb; writer: Writer; subnetId: number } => {
    const dir = tempDir();
    const path = join(dir.path, 'livery.db');
    const cmdb = openCmdb(path);
    const writer = new Writer(path);
    cleanups.push(dir.cleanup, () => cmdb.close(), () => writer.close());
    const subnetId = cmdb.subnets.create({ name: 'lab', cidr: '10.9.0.0/24', pools: [{ start: '10.9.0.100', end: '10.9.0.200' }] }).id;
    return { cmdb, writer, subnetId };
  };
  const step = (mac: string, stage: string, discover = true): WriteOp => {
    const s: BootStep = { stage, mac, machineId: null, imageId: null, discover, door: 'dhcp', detail: { firmware: 'bios' } };
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
      { kind: 'event', event: { type: 'dhcp-nak', mac, detail: { message: 'x' } } },
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
    expect(cmdb.leases.get('10.9.0.100')).toMatchObject({ mac, state: 'bound', expiresAt });
    expect(cmdb.audit.list().map((a) => [a.actor, a.action, a.target])).toContainEqual(['livery:dhcp', 'machine.discover', mac]);
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

  it('refuses an in-memory database, which another connection could never see', () => {
    expect(() => new Writer(':memory:')).toThrow(/needs a database file/);
  });
});
