/**
 * DHCP: full DISCOVER-OFFER-REQUEST-ACK exchanges per second, livery (CMDB on SQLite) against
 * ISC Kea (memfile leases) and dnsmasq, by the method of lib/dhcp-measure.ts.
 */
import { startDnsmasq, startKea } from './lib/dhcp-refs.js';
import { createDhcpBenchNet, curveNote, measureDhcp, methodNote, startLivery } from './lib/dhcp-measure.js';
import { versionOf, type BenchHarness, type BenchRow } from './lib/harness.js';

export default async function dhcp(h: BenchHarness): Promise<BenchRow[]> {
  const { net, n, perfdhcp } = createDhcpBenchNet();
  try {
    const results = await measureDhcp(h, [
      { name: 'livery', start: (dir) => startLivery(net, dir, n), perfdhcp },
      { name: 'Kea', start: (dir) => startKea(net, dir, n), perfdhcp },
      { name: 'dnsmasq --no-ping', start: (dir) => startDnsmasq(net, dir, n, { ping: false }), perfdhcp },
      { name: 'dnsmasq', start: (dir) => startDnsmasq(net, dir, n, { ping: true }), perfdhcp },
    ]);
    const rates = (name: string) => results.get(name)!.runs.map((r) => r.exchangesPerSecond);
    const curve = (name: string) => curveNote(h, name, results.get(name)!);
    const versions = `${versionOf('perfdhcp', ['-v'])}; kea-dhcp4 ${versionOf('kea-dhcp4', ['-v'])}; ${versionOf('dnsmasq', ['--version'])}`;
    const livery = 'livery serve: leases and boot events committed to SQLite (synchronous=FULL, on its writer thread) before each ACK, unknown MACs registered (policy discover)';
    const exchanges = (ref: string, notes: string) =>
      h.row({
        name: `dhcp: 4-way exchanges/s, vs ${ref}`,
        unit: 'exchanges/s',
        higherIsBetter: true,
        livery: rates('livery'),
        reference: rates(ref),
        referenceName: ref,
        notes: `${methodNote(h, n)} (${curve('livery')}; ${curve(ref)}); ${notes}`,
      });
    return [
      exchanges('Kea', `${livery}; Kea memfile persist=true (CSV appended, not fsynced), lfc off, single-threaded; ${versions}`),
      exchanges('dnsmasq --no-ping', 'dnsmasq told not to ping before offering'),
      exchanges('dnsmasq', `dnsmasq default: pings each address before offering it; nothing answers here, so every new client waits out its ping`),
      h.row({
        name: 'dhcp: DISCOVERs unanswered at peak rate',
        unit: '%',
        higherIsBetter: false,
        livery: results.get('livery')!.runs.map((r) => r.discoverDropPercent),
        reference: results.get('Kea')!.runs.map((r) => r.discoverDropPercent),
        referenceName: 'Kea',
        notes: 'percent of DISCOVERs without an OFFER within 1 s, at each server’s own peak offered rate',
      }),
    ];
  } finally {
    net.remove();
  }
}
