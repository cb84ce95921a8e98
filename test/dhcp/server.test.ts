import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../helpers/test-database.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import type { ProbeSpec } from '../helpers/dhcp-probe.js';
import { tempDir } from '../helpers/tmp.js';

const PROBE = join(import.meta.dirname, '../helpers/dhcp-probe.ts');
const SERVER = '10.77.0.1';
const RELAY = '10.88.0.1';

interface Reply {
  from: string;
  xid: number;
  mac: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  file: string | null;
  options: Record<string, unknown>;
}

describe.skipIf(NETNS_SKIP)('DHCP server in a private network namespace', () => {
  const dir = tempDir();
  let net: TestNet;
  let livery: NsLivery;
  let clientMac: string;
  const dataDir = join(dir.path, 'var');

  const config = (mode: 'full' | 'proxy' = 'full') => ({
    dataDir,
    database: database.config,
    http: { listen: `${SERVER}:8080` },
    tftp: { listen: `${SERVER}:69` },
    // The whole pool open to unknown MACs (no share kept for registered machines): these tests exhaust it.
    dhcp: { enabled: true, mode, interface: net.serverIf, address: SERVER, offerHoldSeconds: 5, unknownMacPoolPercent: 100, rateLimit: { perMacPerSecond: 50 } },
  });

  /** Runs the probe in the client namespace and returns the replies it heard. */
  function probe(spec: ProbeSpec): Reply[] {
    const out = net.exec(net.client, process.execPath, ['--import', 'tsx', PROBE, JSON.stringify(spec)], 30_000);
    return out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Reply);
  }
  const database = testDatabase(dataDir);
  const db = () => database.open();

  beforeAll(async () => {
    net = createTestNet({
      serverAddress: `${SERVER}/24`,
      clientAddresses: ['10.77.0.2/24', `${RELAY}/24`],
      routes: [{ ns: 'server', to: '10.88.0.0/24', via: '10.77.0.2' }],
    });
    clientMac = net.exec(net.client, 'cat', [`/sys/class/net/${net.clientIf}/address`]).trim();
    const cmdb = db();
    cmdb.subnets.create({ name: 'lan', cidr: '10.77.0.0/24', gateway: SERVER, dns: [SERVER], domain: 'rack.test', pools: [{ start: '10.77.0.100', end: '10.77.0.104' }], policy: 'discover' });
    cmdb.subnets.create({ name: 'vlan88', cidr: '10.88.0.0/24', gateway: RELAY, pools: [{ start: '10.88.0.50', end: '10.88.0.60' }], policy: 'discover' });
    cmdb.machines.create({ macs: [clientMac], hostname: 'node1', ip: '10.77.0.10' });
    cmdb.close();
    livery = await startLiveryInNs(net, dir.path, config());
  });

  afterAll(async () => {
    await livery?.stop();
    net?.remove();
    dir.cleanup();
  });

  it('gives dhclient its reserved address and the subnet options', () => {
    const out = join(dir.path, 'dhclient.out');
    const script = join(dir.path, 'dhclient-script');
    // A recording script: the real dhclient-script would rewrite the host's /etc/resolv.conf.
    writeFileSync(script, `#!/bin/sh\necho "$reason ip=$new_ip_address routers=$new_routers dns=$new_domain_name_servers host=$new_host_name domain=$new_domain_name" >> ${out}\n`);
    chmodSync(script, 0o755);
    net.exec(net.client, 'timeout', ['25', 'dhclient', '-1', '-sf', script, '-lf', join(dir.path, 'dhclient.leases'), '-pf', join(dir.path, 'dhclient.pid'), net.clientIf], 30_000);
    try {
      const lines = readFileSync(out, 'utf8');
      expect(lines).toContain(`BOUND ip=10.77.0.10 routers=${SERVER} dns=${SERVER} host=node1 domain=rack.test`);
    } finally {
      if (existsSync(join(dir.path, 'dhclient.pid'))) net.exec(net.client, 'sh', ['-c', `kill $(cat ${join(dir.path, 'dhclient.pid')}) 2>/dev/null || true`]);
    }
  });

  it('gives udhcpc (busybox) the same reservation', () => {
    const out = join(dir.path, 'udhcpc.out');
    const script = join(dir.path, 'udhcpc-script');
    writeFileSync(script, `#!/bin/sh\necho "$1 ip=$ip router=$router dns=$dns hostname=$hostname serverid=$serverid" >> ${out}\n`);
    chmodSync(script, 0o755);
    net.exec(net.client, 'udhcpc', ['-f', '-q', '-n', '-t', '5', '-T', '1', '-i', net.clientIf, '-s', script], 30_000);
    expect(readFileSync(out, 'utf8')).toMatch(new RegExp(`bound ip=10\\.77\\.0\\.10 router=${SERVER} dns=${SERVER} hostname=node1 serverid=${SERVER}`));
  });

  it('hands each PXE client the boot file for its firmware', () => {
    const base = { options: { vendorClassId: 'PXEClient:Arch:00000:UNDI:002001' } };
    const replies = probe({
      listenMs: 1500,
      send: [
        { ...base, mac: '52:54:00:00:10:00', xid: 1, type: 'DISCOVER', options: { ...base.options, clientArch: [0] } },
        { ...base, mac: '52:54:00:00:10:07', xid: 7, type: 'DISCOVER', options: { vendorClassId: 'PXEClient:Arch:00007:UNDI:003016', clientArch: [7] } },
        { mac: '52:54:00:00:10:16', xid: 16, type: 'DISCOVER', options: { vendorClassId: 'HTTPClient:Arch:00016:UNDI:003001', clientArch: [16] } },
        { mac: '52:54:00:00:10:99', xid: 99, type: 'DISCOVER', options: { userClass: 'hex:69505845', clientArch: [7] } },
      ],
    });
    const byXid = new Map(replies.map((r) => [r.xid, r]));
    expect(byXid.get(1)).toMatchObject({ siaddr: SERVER, file: 'undionly.kpxe', options: { bootfileName: 'undionly.kpxe', tftpServerName: SERVER, vendorClassId: 'PXEClient' } });
    expect(byXid.get(7)).toMatchObject({ siaddr: SERVER, file: 'snponly.efi' });
    expect(byXid.get(16)!.options).toMatchObject({ vendorClassId: 'HTTPClient', bootfileName: `http://${SERVER}:8080/loaders/ipxe.efi` });
    expect(byXid.get(99)!.options.bootfileName).toBe(`http://${SERVER}:8080/boot/52:54:00:00:10:99.ipxe`);
    for (const r of replies) expect(r.yiaddr).toMatch(/^10\.77\.0\.10[0-4]$/);
    // Each DISCOVER from an unknown MAC registered it as discovered (subnet policy "discover").
    const cmdb = db();
    try {
      expect(cmdb.machines.find('52:54:00:00:10:07')?.state).toBe('discovered');
      // One event per DISCOVER, named by its outcome: the offer carries what the client said.
      const events = cmdb.events.forMac('52:54:00:00:10:00');
      expect(events.map((e) => e.type)).toEqual(['machine-discovered', 'dhcp-offer']);
      expect(events[1]!.detail).toMatchObject({ firmware: 'bios-pxe', vendorClass: expect.stringMatching(/^PXEClient/), userClass: [], relay: null, ip: byXid.get(1)!.yiaddr });
    } finally {
      cmdb.close();
    }
  });

  it('answers a relayed DISCOVER from the relayed subnet, unicast to the relay, option 82 echoed', () => {
    const replies = probe({
      bind: RELAY,
      bindPort: 67,
      listenMs: 1000,
      send: [{ mac: '52:54:00:00:88:01', xid: 881, type: 'DISCOVER', giaddr: RELAY, to: SERVER, options: { relayAgentInfo: 'hex:0104706f7274' } }],
    });
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ from: `${SERVER}:67`, giaddr: RELAY, yiaddr: '10.88.0.50', options: { relayAgentInfo: '0104706f7274', routers: [RELAY] } });
  });

  it('NAKs an INIT-REBOOT for a wrong address, ignores a REQUEST for another server', () => {
    const [nak] = probe({ listenMs: 800, send: [{ mac: clientMac, xid: 5, type: 'REQUEST', options: { requestedIp: '10.77.0.77' } }] });
    expect(nak!.options.messageType).toBe(6);
    const other = probe({
      listenMs: 800,
      send: [
        { mac: '52:54:00:00:20:01', xid: 21, type: 'DISCOVER' },
        { mac: '52:54:00:00:20:01', xid: 21, type: 'REQUEST', afterMs: 300, options: { serverId: '10.77.0.254', requestedIp: '10.77.0.101' } },
      ],
    });
    expect(other.map((r) => r.options.messageType)).toEqual([2]);
  });

  it('stops offering, at once, when the pool is exhausted', () => {
    // Six new MACs ask at once for the five pool addresses.
    const send = [1, 2, 3, 4, 5, 6].map((i) => ({ mac: `52:54:00:00:30:0${i}`, xid: 30 + i, type: 'DISCOVER' as const }));
    const seen = probe({ listenMs: 1500, send });
    expect(seen.length).toBeLessThanOrEqual(5);
    expect(new Set(seen.map((r) => r.yiaddr)).size).toBe(seen.length);
    const metrics = net.exec(net.client, 'curl', ['-s', `http://${SERVER}:8080/metrics`]);
    expect(metrics).toMatch(/livery_dhcp_dropped_total\{reason="pool-exhausted"\} [1-9]/);
    // A DISCOVER left unanswered is still on record, as dhcp-discover rather than dhcp-offer.
    const answered = new Set(seen.map((r) => r.xid));
    const unanswered = send.filter((s) => !answered.has(s.xid));
    expect(unanswered.length).toBeGreaterThan(0);
    const cmdb = db();
    try {
      for (const { mac } of unanswered) {
        const types = cmdb.events.forMac(mac).map((e) => e.type);
        expect(types).toContain('dhcp-discover');
        expect(types).not.toContain('dhcp-offer');
      }
    } finally {
      cmdb.close();
    }
  });

  it('survives kill -9: ACKed leases are on disk and come back; a declined address is quarantined', async () => {
    // Let earlier offers expire, then take a lease.
    await new Promise((r) => setTimeout(r, 5500));
    const mac = '52:54:00:00:40:01';
    const acked = probe({
      listenMs: 1200,
      send: [
        { mac, xid: 41, type: 'DISCOVER' },
        { mac, xid: 41, type: 'REQUEST', afterMs: 400, options: { serverId: SERVER, requestedIp: '10.77.0.100' } },
      ],
    });
    const ack = acked.find((r) => r.options.messageType === 5);
    expect(ack?.yiaddr).toBe('10.77.0.100');
    await livery.kill9();
    const cmdb = db();
    try {
      expect(cmdb.leases.get('10.77.0.100')).toMatchObject({ mac, state: 'bound' });
      expect(cmdb.integrityCheck()).toBe('ok');
    } finally {
      cmdb.close();
    }
    livery = await startLiveryInNs(net, dir.path, config());
    const again = probe({ listenMs: 1000, send: [{ mac, xid: 42, type: 'DISCOVER' }, { mac: '52:54:00:00:40:02', xid: 43, type: 'DISCOVER' }] });
    expect(again.find((r) => r.xid === 42)?.yiaddr).toBe('10.77.0.100');
    expect(again.find((r) => r.xid === 43)?.yiaddr).not.toBe('10.77.0.100');
    // DECLINE of the lease: quarantined, never offered to the next client.
    probe({ listenMs: 300, send: [{ mac, xid: 44, type: 'DECLINE', options: { requestedIp: '10.77.0.100', serverId: SERVER } }] });
    const cmdb2 = db();
    try {
      expect(cmdb2.leases.get('10.77.0.100')?.state).toBe('declined');
    } finally {
      cmdb2.close();
    }
  });

  it('drops garbage and counts it without falling over', () => {
    net.exec(net.client, 'bash', ['-c', `head -c 100 /dev/urandom > /dev/udp/${SERVER}/67; printf 'x' > /dev/udp/${SERVER}/67`]);
    const metrics = net.exec(net.client, 'curl', ['-s', `http://${SERVER}:8080/metrics`]);
    expect(metrics).toMatch(/livery_dhcp_malformed_total\{kind="truncated"\} [1-9]/);
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const leases = JSON.parse(net.exec(net.client, process.execPath, [join(import.meta.dirname, '../../dist/cli/main.js'), '--url', `http://${SERVER}:8080`, '--token', token, 'lease', 'list', '--json', '--subnet', 'lan']));
    expect(leases).toEqual(expect.arrayContaining([expect.objectContaining({ ip: '10.77.0.10', mac: clientMac, state: 'bound' })]));
    const still = probe({ listenMs: 800, send: [{ mac: clientMac, xid: 77, type: 'DISCOVER' }] });
    expect(still[0]?.yiaddr).toBe('10.77.0.10');
  });

  it('withholds an ACK while its lease cannot be committed, and ACKs once the database is writable again', () => {
    const request = (xid: number) => probe({ listenMs: 6500, send: [{ mac: clientMac, xid, type: 'REQUEST', options: { requestedIp: '10.77.0.10' } }] });
    // Another writer (an operator's bulk job) holds the CMDB's write lock past SQLite's 5 s busy
    // timeout: the batch waits for the lock rather than failing, and its ACK waits with it.
    const blocker = database.holdWriteLock();
    let blocked: Reply[];
    try {
      blocked = request(91);
    } finally {
      blocker.release();
    }
    expect(blocked.filter((r) => r.options.messageType === 5)).toEqual([]);
    const metrics = net.exec(net.client, 'curl', ['-s', `http://${SERVER}:8080/metrics`]);
    expect(metrics).not.toMatch(/livery_dhcp_dropped_total\{reason="commit-failed"\} [1-9]/);
    const acked = request(92).find((r) => r.options.messageType === 5);
    expect(acked?.yiaddr).toBe('10.77.0.10');
  });

  it('in proxy mode answers PXE clients with boot information and no address', async () => {
    await livery.stop();
    livery = await startLiveryInNs(net, dir.path, config('proxy'));
    const replies = probe({
      listenMs: 1200,
      send: [
        { mac: clientMac, xid: 61, type: 'DISCOVER', options: { vendorClassId: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0] } },
        { mac: clientMac, xid: 62, type: 'DISCOVER' },
        { mac: clientMac, xid: 63, type: 'REQUEST', to: SERVER, port: 4011, afterMs: 200, ciaddr: '10.77.0.2', options: { vendorClassId: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0] } },
      ],
    });
    expect(replies.map((r) => r.xid).sort()).toEqual([61, 63]);
    const offer = replies.find((r) => r.xid === 61)!;
    expect(offer).toMatchObject({ yiaddr: '0.0.0.0', file: 'undionly.kpxe', options: { vendorClassId: 'PXEClient', vendorSpecific: '060108ff' } });
    expect(offer.options.leaseTime).toBeUndefined();
    expect(replies.find((r) => r.xid === 63)).toMatchObject({ from: `${SERVER}:4011`, options: { messageType: 5, bootfileName: 'undionly.kpxe' } });
  });

  it('in proxy mode answers iPXE with next-server, PXEClient and its script URL, on 67 and 4011', () => {
    // iPXE (net/udp/dhcp.c) takes a ProxyDHCP OFFER or ACK only with vendor class PXEClient, a
    // next-server and a boot file name; without the next-server it never boots ("Nothing to boot").
    const ipxe = { vendorClassId: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0], userClass: `hex:${Buffer.from('iPXE').toString('hex')}` };
    const replies = probe({
      listenMs: 1200,
      send: [
        { mac: clientMac, xid: 64, type: 'DISCOVER', options: ipxe },
        { mac: clientMac, xid: 65, type: 'REQUEST', to: SERVER, port: 4011, afterMs: 200, ciaddr: '10.77.0.2', options: { ...ipxe, serverId: SERVER } },
        // Its REQUEST to the server that gives addresses: not livery's to answer.
        { mac: clientMac, xid: 66, type: 'REQUEST', options: { ...ipxe, serverId: '10.77.0.2', requestedIp: '10.77.0.120' } },
      ],
    });
    expect(replies.map((r) => r.xid).sort()).toEqual([64, 65]);
    const script = expect.stringMatching(/^http:\/\/10\.77\.0\.1:8080\/boot\/.+\.ipxe$/);
    for (const r of replies) {
      expect(r).toMatchObject({ yiaddr: '0.0.0.0', siaddr: SERVER, options: { serverId: SERVER, vendorClassId: 'PXEClient', bootfileName: script } });
    }
    expect(replies.find((r) => r.xid === 65)).toMatchObject({ from: `${SERVER}:4011`, options: { messageType: 5 } });
    const metrics = net.exec(net.client, 'curl', ['-s', `http://${SERVER}:8080/metrics`]);
    expect(metrics).toMatch(/livery_dhcp_dropped_total\{reason="proxy-address-request"\} 1\b/);
  });
});
