import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = '10.79.0.1';
const GARBAGE = join(import.meta.dirname, '../helpers/garbage.ts');

/** Sums every sample of a Prometheus counter (all label sets). */
function counterSum(metrics: string, name: string): number {
  return metrics
    .split('\n')
    .filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

describe.skipIf(NETNS_SKIP)('torture: garbage at a live server while a real client boots', () => {
  const dir = tempDir();
  let net: TestNet;
  let livery: NsLivery;
  const dataDir = join(dir.path, 'var');

  beforeAll(async () => {
    // The attacker is another host on the segment (10.79.0.3): per-client caps must not be its weapon against 10.79.0.2.
    net = createTestNet({ serverAddress: `${SERVER}/24`, clientAddresses: ['10.79.0.2/24', '10.79.0.3/24'] });
    const cmdb = openCmdb(databasePath(dataDir));
    cmdb.subnets.create({ name: 'lan', cidr: '10.79.0.0/24', gateway: SERVER, pools: [{ start: '10.79.0.100', end: '10.79.0.200' }], policy: 'discover' });
    cmdb.close();
    livery = await startLiveryInNs(net, dir.path, {
      dataDir,
      http: { listen: `${SERVER}:8080`, workers: 1 },
      tftp: { listen: `${SERVER}:69` },
      dhcp: { enabled: true, interface: net.serverIf, address: SERVER },
    });
  });
  afterAll(async () => {
    await livery?.stop();
    net?.remove();
    dir.cleanup();
  });

  it('stays up, serves the real client, counts every bad packet, keeps memory bounded', async () => {
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${livery.proc.pid}/status`, 'utf8'))![1]) * 1024;
    const before = rss();
    const garbage = net.spawn(net.client, process.execPath, ['--import', 'tsx', GARBAGE, JSON.stringify({ server: SERVER, count: 6000, perSecond: 1000, from: '10.79.0.3' })]);
    let report = '';
    garbage.stdout!.on('data', (d) => (report += d));
    const garbageDone = new Promise<void>((r) => garbage.once('exit', () => r()));

    // Meanwhile a real client keeps booting: a lease from udhcpc, the loader over TFTP.
    const script = join(dir.path, 'udhcpc.sh');
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && echo "bound $ip" >> ${join(dir.path, 'leases')}\nexit 0\n`);
    chmodSync(script, 0o755);
    const expected = createHash('sha256').update(readFileSync('/usr/lib/ipxe/undionly.kpxe')).digest('hex');
    for (let round = 0; round < 3; round++) {
      net.exec(net.client, 'udhcpc', ['-f', '-q', '-n', '-t', '8', '-T', '1', '-i', net.clientIf, '-s', script], 60_000);
      const out = join(dir.path, `loader-${round}`);
      net.exec(net.client, 'curl', ['-sS', '--max-time', '30', '-o', out, `tftp://${SERVER}/undionly.kpxe`], 40_000);
      expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(expected);
    }
    expect(readFileSync(join(dir.path, 'leases'), 'utf8').trim().split('\n')).toHaveLength(3);
    await Promise.race([garbageDone, new Promise((r) => setTimeout(r, 60_000))]);
    const sent = JSON.parse(report) as { dhcp: number; dhcpBad: number; tftp: number; tftpBad: number };
    expect(sent.dhcp + sent.tftp).toBe(6000);

    await new Promise((r) => setTimeout(r, 500));
    const metrics = net.exec(net.client, 'curl', ['-s', `http://${SERVER}:8080/metrics`]);
    // Every DHCP packet that livery's own decoder rejects was counted as malformed.
    expect(counterSum(metrics, 'livery_dhcp_malformed_total')).toBe(sent.dhcpBad);
    expect(counterSum(metrics, 'livery_tftp_malformed_packets_total') + counterSum(metrics, 'livery_tftp_refused_requests_total')).toBeGreaterThanOrEqual(sent.tftpBad);
    expect(livery.proc.exitCode).toBeNull();
    expect(rss() - before).toBeLessThan(150 * 1024 * 1024);
  }, 240_000);
});
