import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressPool } from '../../src/dhcp/pool.js';
import { buildReply } from '../../src/dhcp/reply.js';
import { decodeDhcp, encodeDhcp, macToChaddr } from '../../src/dhcp/wire/codec.js';
import { parseIpv4 } from '../../src/net/ipv4.js';
import type { BootPlan } from '../../src/boot/index.js';
import type { Subnet } from '../../src/cmdb/types.js';

const ip = (s: string) => parseIpv4(s)!;

describe('AddressPool', () => {
  it('hands out the lowest free address first and answers null when full', () => {
    const pool = new AddressPool([{ start: ip('10.0.0.10'), end: ip('10.0.0.12') }]);
    const now = 1000;
    const got = [pool.allocate(now), pool.allocate(now), pool.allocate(now)];
    for (const g of got) pool.hold(g!, now + 60_000);
    expect(got).toEqual([ip('10.0.0.10'), ip('10.0.0.11'), ip('10.0.0.12')]);
    expect(pool.allocate(now)).toBeNull();
    // A hold that ends makes its address available again, without a scan of the pool.
    expect(pool.allocate(now + 60_001)).toBe(ip('10.0.0.10'));
  });

  it('never gives one address to two holders at once (random hold/release/allocate)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('alloc', 'release', 'tick'), fc.nat(20)), { maxLength: 300 }), (ops) => {
        const pool = new AddressPool([{ start: 100, end: 109 }, { start: 200, end: 204 }]);
        const held = new Map<number, number>();
        let now = 0;
        for (const [op, n] of ops) {
          if (op === 'tick') now += n * 100;
          else if (op === 'release') {
            const victim = [...held.keys()][n % Math.max(held.size, 1)];
            if (victim !== undefined) {
              held.delete(victim);
              pool.release(victim);
            }
          } else {
            for (const [a, until] of held) if (until <= now) held.delete(a);
            const a = pool.allocate(now);
            if (a === null) expect(held.size).toBe(pool.size);
            else {
              expect(held.has(a)).toBe(false);
              expect(pool.contains(a)).toBe(true);
              pool.hold(a, now + 1000);
              held.set(a, now + 1000);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('buildReply', () => {
  const subnet: Subnet = {
    id: 1, name: 'lan', cidr: '10.0.0.0/24', gateway: '10.0.0.1', dns: ['10.0.0.2'], domain: 'rack.test', pools: [], leaseSeconds: 3600,
    policy: 'discover', discoverAction: 'retry', defaultImage: { name: null, channel: null }, secureBoot: null, createdAt: '', updatedAt: '',
  };
  const request = () => {
    const d = decodeDhcp(encodeDhcp({ op: 1, xid: 7, chaddr: macToChaddr('52:54:00:00:00:01'), options: { messageType: 1, vendorClassId: 'PXEClient:Arch:00000', clientUuid: new Uint8Array(17) } }));
    if (!d.ok) throw new Error('fixture');
    return d.packet;
  };
  const plan = (next: BootPlan['next']) => ({ next }) as BootPlan;

  it('puts a TFTP loader in siaddr, file, 66 and 67 and echoes the PXE GUID', () => {
    const r = buildReply({ request: request(), type: 'offer', server: { address: '10.0.0.1' }, yiaddr: '10.0.0.50', subnet, leaseSeconds: 3600, plan: plan({ kind: 'tftp', file: 'undionly.kpxe' }) });
    expect(r).toMatchObject({ op: 2, xid: 7, yiaddr: '10.0.0.50', siaddr: '10.0.0.1', file: 'undionly.kpxe' });
    expect(r.options).toMatchObject({
      messageType: 2, serverId: '10.0.0.1', subnetMask: '255.255.255.0', routers: ['10.0.0.1'], dnsServers: ['10.0.0.2'], domainName: 'rack.test',
      leaseTime: 3600, renewalTime: 1800, rebindingTime: 3150, tftpServerName: '10.0.0.1', bootfileName: 'undionly.kpxe', vendorClassId: 'PXEClient',
    });
    expect(r.options.clientUuid).toHaveLength(17);
    // Discovery control "boot file direct": without it UEFI PXE asks again on port 4011.
    expect(Buffer.from(r.options.vendorSpecific!).toString('hex')).toBe('060108ff');
  });

  it('gives proxyDHCP replies no address or network options, and option 43', () => {
    const r = buildReply({ request: request(), type: 'offer', server: { address: '10.0.0.1' }, subnet, plan: plan({ kind: 'tftp', file: 'undionly.kpxe' }), proxy: true });
    expect(r.yiaddr).toBe('0.0.0.0');
    expect(r.options.subnetMask).toBeUndefined();
    expect(r.options.leaseTime).toBeUndefined();
    expect(Buffer.from(r.options.vendorSpecific!).toString('hex')).toBe('060108ff');
  });

  it('names the boot server in proxyDHCP replies to iPXE (next-server and PXEClient), which ignores them otherwise', () => {
    const url = 'http://10.0.0.1:8080/boot/52:54:00:00:00:01.ipxe';
    for (const type of ['offer', 'ack'] as const) {
      const r = buildReply({ request: request(), type, server: { address: '10.0.0.1' }, subnet, plan: plan({ kind: 'script', url }), proxy: true });
      expect(r).toMatchObject({ yiaddr: '0.0.0.0', siaddr: '10.0.0.1', file: url });
      expect(r.options).toMatchObject({ serverId: '10.0.0.1', vendorClassId: 'PXEClient', bootfileName: url });
    }
    // Full mode leaves next-server to TFTP loaders: iPXE takes the script URL from its DHCP ACK.
    const full = buildReply({ request: request(), type: 'ack', server: { address: '10.0.0.1' }, yiaddr: '10.0.0.50', subnet, leaseSeconds: 60, plan: plan({ kind: 'script', url }) });
    expect(full.siaddr).toBeUndefined();
  });

  it('marks UEFI HTTP Boot replies with vendor class HTTPClient and a URL', () => {
    const r = buildReply({ request: request(), type: 'ack', server: { address: '10.0.0.1' }, yiaddr: '10.0.0.50', subnet, leaseSeconds: 60, plan: plan({ kind: 'http', url: 'http://10.0.0.1:8080/loaders/ipxe.efi' }) });
    expect(r.options).toMatchObject({ vendorClassId: 'HTTPClient', bootfileName: 'http://10.0.0.1:8080/loaders/ipxe.efi' });
    expect(r.siaddr).toBeUndefined();
  });

  it('NAKs carry only what RFC 2131 allows', () => {
    const r = buildReply({ request: request(), type: 'nak', server: { address: '10.0.0.1' }, message: 'wrong network' });
    expect(r.options).toEqual({ messageType: 6, serverId: '10.0.0.1', message: 'wrong network' });
    expect(r.yiaddr).toBe('0.0.0.0');
  });
});
