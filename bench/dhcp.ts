/**
 * DHCP: full DISCOVER-OFFER-REQUEST-ACK exchanges per second, livery (CMDB on SQLite) against
 * ISC Kea (memfile leases, single- and multi-threaded) and dnsmasq, by the method of
 * lib/dhcp-measure.ts; then the tail below the peak (lib/dhcp-tail.ts) against both Keas.
 */
import { startDnsmasq, startKea } from './lib/dhcp-refs.js';
import { createDhcpBenchNet, curveNote, median, measureDhcp, methodNote, startLivery } from './lib/dhcp-measure.js';
import { latencyMs, measureTail, medianLatencyMs, TAIL_SHARE, type TailRun } from './lib/dhcp-tail.js';
import { versionOf, type BenchHarness, type BenchRow } from './lib/harness.js';

const KEA = 'Kea';
/** Kea's multi-threaded mode with a thread per core of this machine, as the issue names it. */
const KEA_MT = 'Kea multi-threaded';
const KEA_THREADS = 2;

export default async function dhcp(h: BenchHarness): Promise<BenchRow[]> {
  const { net, n, perfdhcp } = createDhcpBenchNet();
  try {
    const livery = { name: 'livery', start: (dir: string) => startLivery(net, dir, n), perfdhcp };
    const keas = [
      { name: KEA, start: (dir: string) => startKea(net, dir, n), perfdhcp },
      { name: KEA_MT, start: (dir: string) => startKea(net, dir, n, { threads: KEA_THREADS }), perfdhcp },
    ];
    const results = await measureDhcp(h, [
      livery,
      ...keas,
      { name: 'dnsmasq --no-ping', start: (dir) => startDnsmasq(net, dir, n, { ping: false }), perfdhcp },
      { name: 'dnsmasq', start: (dir) => startDnsmasq(net, dir, n, { ping: true }), perfdhcp },
    ]);
    const rates = (name: string) => results.get(name)!.runs.map((r) => r.exchangesPerSecond);
    const curve = (name: string) => curveNote(h, name, results.get(name)!);
    const versions = `${versionOf('perfdhcp', ['-v'])}; kea-dhcp4 ${versionOf('kea-dhcp4', ['-v'])}; ${versionOf('dnsmasq', ['--version'])}`;
    const liveryNote = 'livery serve: leases and boot events committed to SQLite (synchronous=FULL, on its writer thread) before each ACK, unknown MACs registered (policy discover)';
    const keaNote = 'Kea memfile persist=true (CSV appended, not fsynced), lfc off';
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

    const tailRate = Math.round(TAIL_SHARE * median(h, rates('livery')));
    const tail = await measureTail(h, net, [livery, ...keas], tailRate);
    return [
      exchanges(KEA, `${liveryNote}; ${keaNote}, single-threaded (Kea 2.2's default); ${versions}`),
      exchanges(KEA_MT, `${liveryNote}; ${keaNote}, multi-threading on with thread-pool-size ${KEA_THREADS}, its packet queue at Kea's default size`),
      exchanges('dnsmasq --no-ping', 'dnsmasq told not to ping before offering'),
      exchanges('dnsmasq', `dnsmasq default: pings each address before offering it; nothing answers here, so every new client waits out its ping`),
      h.row({
        name: 'dhcp: DISCOVERs unanswered at peak rate',
        unit: '%',
        higherIsBetter: false,
        livery: results.get('livery')!.runs.map((r) => r.discoverDropPercent),
        reference: results.get(KEA)!.runs.map((r) => r.discoverDropPercent),
        referenceName: KEA,
        notes: 'percent of DISCOVERs without an OFFER within 1 s, at each server’s own peak offered rate',
      }),
      ...tailRows(h, tail, tailRate),
    ];
  } finally {
    net.remove();
  }
}

/** The tail rows: every figure at the same offered rate, livery against single-threaded Kea, multi-threaded Kea in the notes. */
function tailRows(h: BenchHarness, tail: Map<string, TailRun[]>, rate: number): BenchRow[] {
  const at = `at ${Math.round(TAIL_SHARE * 100)} % of livery's peak`;
  const offered = `every server offered -r ${rate}`;
  const runs = (name: string) => tail.get(name)!;
  const dropped = [...tail.values()].flat().reduce((sum, r) => sum + r.captureDropped, 0);
  const latencyRow = (label: string, q: number) =>
    h.row({
      name: `dhcp: ACK latency ${label} ${at}`,
      unit: 'ms',
      higherIsBetter: false,
      livery: latencyMs(runs('livery'), 'ack', q),
      reference: latencyMs(runs(KEA), 'ack', q),
      referenceName: KEA,
      notes:
        `${offered}; from a REQUEST's arrival at the server's interface to its ACK's departure (tcpdump there, ${dropped} packets dropped by its buffer over all runs), median over runs of each run's ${label}; ` +
        `${KEA_MT}: ${medianLatencyMs(h, runs(KEA_MT), 'ack', q)} ms; DISCOVER→OFFER ${label}: livery ${medianLatencyMs(h, runs('livery'), 'offer', q)}, ${KEA} ${medianLatencyMs(h, runs(KEA), 'offer', q)}, ${KEA_MT} ${medianLatencyMs(h, runs(KEA_MT), 'offer', q)} ms; ` +
        `livery's ACK leaves after its lease is on disk (group commit, at most one commit window plus the fsync); Kea's memfile ACKs before its CSV line reaches the disk`,
    });
  const unanswered = (name: string) => runs(name).map((r) => r.unansweredPercent);
  return [
    h.row({
      name: `dhcp: exchanges without an ACK ${at}`,
      unit: '%',
      higherIsBetter: false,
      livery: unanswered('livery'),
      reference: unanswered(KEA),
      referenceName: KEA,
      notes: `${offered}; percent of DISCOVERs whose exchange got no ACK (no OFFER, or no ACK to the REQUEST, within 1 s of each; perfdhcp -W 1 s reads the replies of the last exchanges); target below 0.1 %; ${KEA_MT}: ${median(h, unanswered(KEA_MT)).toFixed(3)} %; perfdhcp runs on the same 2 cores as the server`,
    }),
    latencyRow('p50', 0.5),
    latencyRow('p99', 0.99),
    latencyRow('p99.9', 0.999),
  ];
}
