import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { StoredLease } from '../../src/cmdb/leases.js';
import type { WriteOp } from '../../src/cmdb/index.js';
import { PgError } from '../../src/cmdb/postgres/sync-pg.js';
import { CmdbOutage } from '../../src/dhcp/cmdb-outage.js';
import { dhcpMetrics } from '../../src/dhcp/metrics.js';
import { Outbox, type Outgoing } from '../../src/dhcp/outbox.js';
import { decodeDhcp, macToChaddr } from '../../src/dhcp/wire/codec.js';
import { DhcpMessageType } from '../../src/dhcp/wire/options.js';
import { createLogger } from '../../src/log.js';

const MAC = '52:54:00:00:0b:01';

function reply(type: 'ack' | 'nak', sent: Buffer[]): Outgoing {
  const messageType = type === 'ack' ? DhcpMessageType.ACK : DhcpMessageType.NAK;
  return {
    packet: { op: 2, xid: 7, chaddr: macToChaddr(MAC), yiaddr: type === 'ack' ? '10.0.0.100' : '0.0.0.0', options: { messageType } },
    to: { address: '127.0.0.1', port: 68 },
    socket: { send: (b) => (sent.push(b), null), close: () => {} },
    type,
  };
}

describe('an ACK whose lease claim the database refused', () => {
  it('is replaced by its NAK once the batch commits, the holder is learnt, and the drop is counted', async () => {
    const sent: Buffer[] = [];
    const learnt: StoredLease[][] = [];
    const holder: StoredLease = { ip: '10.0.0.100', mac: '52:54:00:00:0a:01', subnetId: 1, state: 'bound', expiresAt: Date.now() + 60_000, clientId: null, hostname: null, updatedAt: Date.now() };
    const committed: WriteOp[][] = [];
    const registry = new Registry();
    const metrics = dhcpMetrics(registry);
    const logger = createLogger('silent');
    const outbox = new Outbox(
      async (ops) => {
        committed.push(ops);
        return [holder];
      },
      metrics,
      logger,
      new CmdbOutage(registry, logger),
      () => {},
      (rows) => learnt.push(rows),
    );
    outbox.write({ kind: 'event', event: { type: 'dhcp-ack', mac: MAC, at: Date.now() } });
    outbox.reply(reply('ack', sent), true, { ip: '10.0.0.100', instead: () => reply('nak', sent) });
    await outbox.settle();
    expect(committed).toHaveLength(1);
    expect(sent.map((b) => decodeDhcp(b)).map((d) => (d.ok ? d.packet.options.messageType : null))).toEqual([DhcpMessageType.NAK]);
    expect(learnt).toEqual([[holder]]);
    expect((await registry.getSingleMetricAsString('livery_dhcp_dropped_total')).includes('reason="lease-taken"} 1')).toBe(true);
  });
});

describe('a commit sent before the CMDB went away', () => {
  it('does not end the outage when it lands after a lookup met the database down; a commit sent during the outage does', async () => {
    const registry = new Registry();
    const out = new PassThrough();
    let log = '';
    out.on('data', (b: Buffer) => (log += b.toString()));
    const logger = createLogger('info', 'test', out);
    const outage = new CmdbOutage(registry, logger);
    const gauge = async () => (await registry.getSingleMetricAsString('livery_dhcp_cmdb_up')).split('\n').at(-1);
    let land!: () => void;
    const outbox = new Outbox(
      (): Promise<StoredLease[]> => new Promise((resolve) => (land = () => resolve([]))),
      dhcpMetrics(registry),
      logger,
      outage,
      () => {},
      () => {},
    );
    outbox.write({ kind: 'event', event: { type: 'dhcp-ack', mac: MAC, at: Date.now() } });
    outbox.flush();
    expect(outage.failed(new PgError({ message: 'terminating connection due to administrator command', code: '57P01' }))).toBe(true);
    land();
    await outbox.settle();
    expect(await gauge()).toBe('livery_dhcp_cmdb_up 0');

    outbox.write({ kind: 'event', event: { type: 'dhcp-ack', mac: MAC, at: Date.now() } });
    outbox.flush();
    land();
    await outbox.settle();
    expect(await gauge()).toBe('livery_dhcp_cmdb_up 1');
    const lines = log.trim().split('\n').map((l) => JSON.parse(l).msg as string);
    expect(lines.map((m) => m.slice(0, 26))).toEqual(['the CMDB cannot be reached', 'the CMDB answers again: DH']);
  });
});
