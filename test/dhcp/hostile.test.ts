import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import type { ProbeSend, ProbeSpec } from '../helpers/dhcp-probe.js';
import { tempDir } from '../helpers/tmp.js';

const PROBE = join(import.meta.dirname, '../helpers/dhcp-probe.ts');
const SERVER = '10.79.0.1';
const CLIENT = '10.79.0.2';
const RELAY = '10.89.0.1';
/** A registered machine with no reservation: it needs a pool address like any unknown MAC. */
const REGISTERED = '52:54:00:79:00:01';

interface Reply {
  xid: number;
  mac: string;
  yiaddr: string;
  options: { messageType?: number };
}

/** Each test starts livery (some twice) and several clients: generous on a loaded machine. */
const TIMEOUT_MS = 180_000;

/** Attacks from a host on livery's own segment, each against a fresh data dir and server. */
describe.skipIf(NETNS_SKIP)('DHCP on a hostile segment', () => {
  const dir = tempDir();
  let net: TestNet;
  let livery: NsLivery | undefined;
  let clientMac: string;
  let run = 0;
  let dataDir = '';

  const probe = (spec: ProbeSpec): Reply[] =>
    net
      .exec(net.client, process.execPath, ['--import', 'tsx', PROBE, JSON.stringify(spec)], 60_000)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Reply);
  const metrics = () => net.exec(net.client, 'curl', ['-s', `http://${SERVER}:8080/metrics`]);
  const dropped = (reason: string) => Number(new RegExp(`livery_dhcp_dropped_total\\{reason="${reason}"\\} ([0-9]+)`).exec(metrics())?.[1] ?? 0);
  const withDb = <T>(fn: (cmdb: ReturnType<typeof openCmdb>) => T): T => {
    const cmdb = openCmdb(databasePath(dataDir));
    try {
      return fn(cmdb);
    } finally {
      cmdb.close();
    }
  };
  const leases = (subnet: string) => withDb((c) => c.leases.inSubnet(c.subnets.list().find((s) => s.name === subnet)!.id));

  /** A fresh data dir (two subnets, a registered machine) and livery serving it. */
  async function start(dhcp: Record<string, unknown> = {}, fresh = true, more: Record<string, unknown> = {}): Promise<void> {
    if (fresh) {
      dataDir = join(dir.path, `var${run++}`);
      withDb((cmdb) => {
        cmdb.subnets.create({ name: 'lan', cidr: '10.79.0.0/24', gateway: SERVER, pools: [{ start: '10.79.0.100', end: '10.79.0.109' }], policy: 'discover' });
        cmdb.subnets.create({ name: 'vlan89', cidr: '10.89.0.0/24', gateway: RELAY, pools: [{ start: '10.89.0.50', end: '10.89.0.59' }], policy: 'discover' });
        cmdb.machines.create({ macs: [REGISTERED], hostname: 'registered' });
        cmdb.machines.create({ macs: [clientMac], hostname: 'client' });
      });
    }
    livery = await startLiveryInNs(net, dir.path, {
      dataDir,
      http: { listen: `${SERVER}:8080`, workers: 1 },
      tftp: { enabled: false },
      dhcp: { enabled: true, interface: net.serverIf, address: SERVER, ...dhcp },
      ...more,
    });
  }

  beforeAll(() => {
    net = createTestNet({ serverAddress: `${SERVER}/24`, clientAddresses: [`${CLIENT}/24`, `${RELAY}/24`], routes: [{ ns: 'server', to: '10.89.0.0/24', via: CLIENT }] });
    clientMac = net.exec(net.client, 'cat', [`/sys/class/net/${net.clientIf}/address`]).trim();
  });
  afterEach(async () => {
    await livery?.stop();
    livery = undefined;
  });
  afterAll(() => {
    net?.remove();
    dir.cleanup();
  });

  /** The registered machine's DORA: the address it was ACKed, if any. */
  const registeredGetsAddress = () => probe({ listenMs: 1500, answerOffers: 'REQUEST', send: [{ mac: REGISTERED, xid: 7001, type: 'DISCOVER' }] }).find((r) => r.options.messageType === 5)?.yiaddr;

  it('ignores a client on the segment that sets giaddr to a relayed subnet: only relays (port 67, from giaddr or relaySources) are answered', async () => {
    await start();
    const asRelay = (mac: string, xid: number): ProbeSend[] => [
      { mac, xid, type: 'DISCOVER', giaddr: RELAY, to: SERVER },
      { mac, xid, type: 'REQUEST', giaddr: RELAY, to: SERVER, afterMs: 50, options: { serverId: SERVER, requestedIp: '10.89.0.55' } },
    ];
    // A client port, then the server port from an address that is neither giaddr nor a listed relay.
    probe({ listenMs: 800, send: asRelay('02:00:00:89:00:01', 8901) });
    probe({ bind: CLIENT, bindPort: 67, listenMs: 800, send: asRelay('02:00:00:89:00:02', 8902) });
    expect(leases('vlan89')).toEqual([]);
    expect(dropped('relay-from-client-port')).toBe(2);
    expect(dropped('relay-untrusted-source')).toBe(2);
    // The real relay still is: from its giaddr, on port 67.
    const real = probe({ bind: RELAY, bindPort: 67, listenMs: 800, send: [{ mac: '02:00:00:89:00:03', xid: 8903, type: 'DISCOVER', giaddr: RELAY, to: SERVER }] });
    expect(real.map((r) => r.yiaddr)).toEqual(['10.89.0.50']);
    await livery!.stop();
    // A relay that sends from another of its addresses is answered once listed in dhcp.relaySources.
    await start({ relaySources: [`${CLIENT}/32`] }, false);
    probe({ bind: CLIENT, bindPort: 67, listenMs: 800, send: asRelay('02:00:00:89:00:04', 8904) });
    expect(leases('vlan89')).toEqual([expect.objectContaining({ ip: '10.89.0.55', mac: '02:00:00:89:00:04', state: 'bound' })]);
  }, TIMEOUT_MS);

  it('frees a lease on RELEASE only from its holder: its address as source, its MAC and client identifier', async () => {
    await start();
    const victim = '10.79.0.100';
    const clientId = { clientId: 'hex:01aabbccddeeff' };
    const [ack] = probe({ listenMs: 1200, send: [{ mac: REGISTERED, xid: 1, type: 'DISCOVER' }, { mac: REGISTERED, xid: 1, type: 'REQUEST', afterMs: 300, options: { serverId: SERVER, requestedIp: victim, ...clientId } }] }).filter((r) => r.options.messageType === 5);
    expect(ack?.yiaddr).toBe(victim);
    const release = (options: Record<string, unknown>): ProbeSend => ({ mac: REGISTERED, xid: 2, type: 'RELEASE', ciaddr: victim, to: SERVER, options: { serverId: SERVER, ...options } });
    // From another host of the segment, with the victim's MAC, address and client identifier.
    probe({ listenMs: 300, send: [release(clientId)] });
    expect(dropped('release-wrong-source')).toBe(1);
    net.exec(net.client, 'ip', ['addr', 'add', `${victim}/32`, 'dev', net.clientIf]);
    try {
      // From the leased address, but without the lease's client identifier.
      probe({ bind: victim, listenMs: 300, send: [release({ clientId: 'hex:01000000000001' })] });
      expect(dropped('release-not-holder')).toBe(1);
      expect(leases('lan').find((l) => l.ip === victim)?.state).toBe('bound');
      // The holder itself.
      probe({ bind: victim, listenMs: 300, send: [release(clientId)] });
    } finally {
      net.exec(net.client, 'ip', ['addr', 'del', `${victim}/32`, 'dev', net.clientIf]);
    }
    expect(leases('lan').find((l) => l.ip === victim)?.state).toBe('released');
  }, TIMEOUT_MS);

  it('holds unknownMacLeaseCap on REQUESTs sent without a DISCOVER, across a restart', async () => {
    await start({ unknownMacLeaseCap: 4 });
    // SELECTING (server id and address) and INIT-REBOOT (address only) forms, from made-up MACs.
    const requests = (base: number, first: number): ProbeSend[] =>
      Array.from({ length: 10 }, (_, i) => {
        const mac = `02:00:00:03:00:${(base + i).toString(16).padStart(2, '0')}`;
        const requestedIp = `10.79.0.${first + Math.floor(i / 2) * 2}`;
        return { mac, xid: base + i, type: 'REQUEST', options: i % 2 === 0 ? { serverId: SERVER, requestedIp } : { requestedIp } };
      });
    const acked = probe({ listenMs: 1500, send: requests(0, 100) }).filter((r) => r.options.messageType === 5);
    expect(acked).toHaveLength(4);
    expect(leases('lan').filter((l) => l.state === 'bound')).toHaveLength(4);
    expect(dropped('unknown-mac-cap')).toBeGreaterThan(0);
    // The count is rebuilt from the lease table: a restart grants no more.
    await livery!.stop();
    await start({ unknownMacLeaseCap: 4 }, false);
    const after = probe({ listenMs: 1500, send: [...requests(0x40, 101), { mac: '02:00:00:03:00:99', xid: 99, type: 'DISCOVER' }] });
    expect(after).toEqual([]);
    expect(leases('lan').filter((l) => l.state === 'bound')).toHaveLength(4);
    expect(registeredGetsAddress()).toMatch(/^10\.79\.0\.10[0-9]$/);
  }, TIMEOUT_MS);

  it('after a storm of DISCOVER+DECLINE from made-up MACs, a registered machine still gets an address', async () => {
    await start({ offerHoldSeconds: 5 });
    const storm = (base: number): ProbeSend[] => Array.from({ length: 30 }, (_, i) => ({ mac: `02:00:00:04:${(base + i).toString(16).padStart(4, '0').replace(/(..)(..)/, '$1:$2')}`, xid: base + i, type: 'DISCOVER', afterMs: 10 }));
    probe({ listenMs: 1500, answerOffers: 'DECLINE', send: storm(0) });
    probe({ listenMs: 1500, answerOffers: 'DECLINE', send: storm(0x100) });
    // Unknown MACs may take 90 % of the 10 pool addresses out of service, never more.
    const declined = leases('lan').filter((l) => l.state === 'declined');
    expect(declined.length).toBeGreaterThan(0);
    expect(declined.length).toBeLessThanOrEqual(9);
    expect(dropped('unknown-mac-share')).toBeGreaterThan(0);
    // A DECLINE for an address never offered to that MAC quarantines nothing.
    probe({ listenMs: 300, send: [{ mac: '02:00:00:04:ff:ff', xid: 1, type: 'DECLINE', options: { serverId: SERVER, requestedIp: '10.79.0.109' } }] });
    expect(dropped('decline-not-holder')).toBe(1);
    // A real client on a registered machine, with a PXE ROM's patience.
    const out = join(dir.path, 'udhcpc-after-storm');
    const script = join(dir.path, 'udhcpc-after-storm.sh');
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && echo "$ip" >> ${out}\nexit 0\n`);
    chmodSync(script, 0o755);
    net.exec(net.client, 'udhcpc', ['-f', '-q', '-n', '-t', '5', '-T', '1', '-i', net.clientIf, '-s', script], 30_000);
    expect(readFileSync(out, 'utf8').trim()).toMatch(/^10\.79\.0\.10[0-9]$/);
  }, TIMEOUT_MS);

  it('bounds the machine records unknown MACs create per subnet, and expires stale ones that hold no lease', async () => {
    await start({}, true, { discovery: { maxPerSubnet: 5, intervalSeconds: 600, expireAfterSeconds: 3 } });
    const kept = '02:00:00:05:00:00';
    const dora = probe({ listenMs: 1200, answerOffers: 'REQUEST', send: [{ mac: kept, xid: 500, type: 'DISCOVER' }] });
    expect(dora.map((r) => r.options.messageType)).toEqual([2, 5]);
    const macs = Array.from({ length: 19 }, (_, i) => `02:00:00:05:00:${(i + 1).toString(16).padStart(2, '0')}`);
    const offers = probe({ listenMs: 1500, send: macs.map((mac, i) => ({ mac, xid: 501 + i, type: 'DISCOVER', afterMs: 10 })) });
    // Still answered (within the unknown-MAC share of the pool), but only five are recorded.
    expect(offers.length).toBeGreaterThan(5);
    expect(withDb((c) => c.machines.count('discovered'))).toBe(5);
    expect(Number(/^livery_dhcp_discovery_refused_total ([0-9]+)$/m.exec(metrics())?.[1])).toBe(15);
    expect(withDb((c) => c.events.forMac(macs[18]!))).toEqual([]);
    // Unseen for 3 s: the four without a lease go; the one holding a lease and the registered machines stay.
    const deadline = Date.now() + 10_000;
    while (withDb((c) => c.machines.count('discovered')) > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(withDb((c) => c.machines.list({ state: 'discovered' }).map((m) => m.macs))).toEqual([[kept]]);
    expect(withDb((c) => c.machines.count('registered'))).toBe(2);
    expect(metrics()).toMatch(/^livery_machines_discovered_expired_total 4$/m);
  }, TIMEOUT_MS);
});
