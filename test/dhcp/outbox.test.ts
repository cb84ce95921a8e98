import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { StoredLease } from '../../src/cmdb/leases.js';
import type { WriteOp } from '../../src/cmdb/index.js';
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
