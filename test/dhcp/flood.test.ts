import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = '10.81.0.1';
const FLOOD = join(import.meta.dirname, '../helpers/flood.ts');
const CAP = 20;

describe.skipIf(NETNS_SKIP)('DHCP floods', () => {
  const dir = tempDir();
  let net: TestNet;
  let livery: NsLivery;
  let clientMac = '';
  const dataDir = join(dir.path, 'var');

  beforeAll(async () => {
    net = createTestNet({ serverAddress: `${SERVER}/24`, clientAddresses: ['10.81.0.2/24'] });
    clientMac = net.exec(net.client, 'cat', [`/sys/class/net/${net.clientIf}/address`]).trim();
    const cmdb = openCmdb(databasePath(dataDir));
    cmdb.subnets.create({ name: 'lan', cidr: '10.81.0.0/24', gateway: SERVER, pools: [{ start: '10.81.0.20', end: '10.81.0.250' }], policy: 'discover' });
    cmdb.machines.create({ macs: [clientMac], hostname: 'legit' });
    cmdb.close();
    livery = await startLiveryInNs(net, dir.path, {
      dataDir,
      http: { listen: `${SERVER}:8080`, workers: 1 },
      tftp: { enabled: false },
      dhcp: { enabled: true, interface: net.serverIf, address: SERVER, unknownMacLeaseCap: CAP, rateLimit: { perMacPerSecond: 5, globalPerSecond: 50 } },
    });
  });
  afterAll(async () => {
    await livery?.stop();
    net?.remove();
    dir.cleanup();
  });

  /** Runs a flood in the background while the legitimate client asks for a lease. */
  async function floodWhileLegitAsks(macs: 'random' | 'one') {
    const flood = net.spawn(net.client, process.execPath, ['--import', 'tsx', FLOOD, JSON.stringify({ server: SERVER, count: 4000, perSecond: 2000, macs })]);
    let out = '';
    flood.stdout!.on('data', (d) => (out += d));
    const done = new Promise<void>((r) => flood.once('exit', () => r()));
    await new Promise((r) => setTimeout(r, 500));
    const leases = join(dir.path, `legit-${macs}`);
    const script = join(dir.path, `udhcpc-${macs}.sh`);
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && echo "$ip" >> ${leases}\nexit 0\n`);
    chmodSync(script, 0o755);
    // A real client with the PXE ROM's patience: several retries a second or so apart.
    net.exec(net.client, 'udhcpc', ['-f', '-q', '-n', '-t', '10', '-T', '1', '-i', net.clientIf, '-s', script], 60_000);
    await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
    return { flood: JSON.parse(out) as { sent: number; replies: number; offered: number }, lease: readFileSync(leases, 'utf8').trim() };
  }

  it('a flood from one MAC is held to its per-MAC rate, and the real client still gets its lease', async () => {
    const { flood, lease } = await floodWhileLegitAsks('one');
    expect(lease).toMatch(/^10\.81\.0\./);
    expect(flood.replies).toBeLessThan(flood.sent / 10);
    const metrics = net.exec(net.client, 'curl', ['-s', `http://${SERVER}:8080/metrics`]);
    expect(metrics).toMatch(/livery_dhcp_dropped_total\{reason="rate-limit-per-mac"\} [1-9]/);
  });

  it('a flood from many MACs is held by the global rate and the unknown-MAC cap; the real client still gets its lease', async () => {
    const { flood, lease } = await floodWhileLegitAsks('random');
    expect(lease).toMatch(/^10\.81\.0\./);
    // The pool has 231 addresses; unknown MACs may hold at most CAP of them.
    expect(flood.offered).toBeLessThanOrEqual(CAP);
    const metrics = net.exec(net.client, 'curl', ['-s', `http://${SERVER}:8080/metrics`]);
    expect(metrics).toMatch(/livery_dhcp_dropped_total\{reason="unknown-mac-cap"\} [1-9]/);
    expect(metrics).toMatch(/livery_dhcp_dropped_total\{reason="rate-limit-global"\} [1-9]/);
  });
});
