/**
 * DHCP's tail, below the peak: at a fixed share of livery's own peak, how many exchanges never
 * complete, and how long a server holds each REQUEST before its ACK leaves.
 *
 * Two runs per server and round, each from a fresh server after the same warm-up as the rate rows:
 * - loss: perfdhcp waits a second after its last DISCOVER, so an exchange still in flight
 *   when it stops sending is not counted as lost (without the wait, a server that ACKs after
 *   its commit's fsync would lose the last commit window's exchanges to the tool's exit);
 * - latency: tcpdump on the server's interface, which times each REQUEST's arrival and its ACK's
 *   departure. tcpdump takes CPU from the same two cores, so loss is not counted in this run.
 */
import { join } from 'node:path';
import { DhcpMessageType } from '../../src/dhcp/wire/options.js';
import { percentile } from '../../src/lab/storm/report.js';
import { hostIn, type TestNet } from '../../test/helpers/netns.js';
import { answering, readDhcpCapture, startCapture, type Answering } from './dhcp-capture.js';
import { BENCH_NETWORK, median, perfdhcpRun, RUN_SECONDS, type DhcpTarget } from './dhcp-measure.js';
import type { BenchHarness } from './harness.js';

/** The load of the tail rows, as a share of livery's peak exchanges/s (the 70 %). */
export const TAIL_SHARE = 0.7;
/** How long perfdhcp waits for replies after its last request; also its drop time (1 s). */
const EXIT_WAIT_SECONDS = 1;
/** A reply later than this is a miss: perfdhcp's drop time, and a PXE ROM's first retransmission comes at 4 s. */
const ANSWER_WINDOW_SECONDS = 1;

export interface TailRun {
  /** Percent of DISCOVERs whose exchange got no ACK (loss run). */
  unansweredPercent: number;
  /** REQUEST→ACK at the server's interface, seconds (latency run). */
  ack: Answering;
  /** DISCOVER→OFFER at the server's interface, seconds (latency run). */
  offer: Answering;
  /** Packets tcpdump's kernel buffer dropped: a capture that missed packets would misreport the server. */
  captureDropped: number;
}

/** Every target at `rate` offered, `h.runs` interleaved rounds; target name → its runs. */
export async function measureTail(h: BenchHarness, net: TestNet, targets: DhcpTarget[], rate: number): Promise<Map<string, TailRun[]>> {
  const runs = new Map<string, TailRun[]>(targets.map((t) => [t.name, []]));
  const capture = async (dir: string) => {
    const file = join(dir, 'dhcp.pcap');
    const tcpdump = await startCapture(hostIn(net, net.server), net.serverIf, file);
    return async () => {
      // perfdhcp has stopped, but the last commit window's ACKs are still to leave.
      await new Promise((r) => setTimeout(r, ANSWER_WINDOW_SECONDS * 1000));
      const dropped = await tcpdump.stop();
      return { dropped, seen: readDhcpCapture(file, BENCH_NETWORK.address) };
    };
  };
  for (let round = 0; round < h.runs; round++) {
    for (const t of targets) {
      const loss = await perfdhcpRun(h, t, rate, RUN_SECONDS, { exitWaitSeconds: EXIT_WAIT_SECONDS });
      const timed = await perfdhcpRun(h, t, rate, RUN_SECONDS, { during: capture });
      const { seen, dropped } = timed.during!;
      const run: TailRun = {
        unansweredPercent: loss.unansweredPercent,
        ack: answering(seen, DhcpMessageType.REQUEST, DhcpMessageType.ACK, ANSWER_WINDOW_SECONDS),
        offer: answering(seen, DhcpMessageType.DISCOVER, DhcpMessageType.OFFER, ANSWER_WINDOW_SECONDS),
        captureDropped: dropped,
      };
      // A run with no reply timed is a broken capture, not a fast server (its percentiles would read 0).
      if (run.ack.answered === 0 || run.offer.answered === 0) throw new Error(`${t.name} at ${rate}/s: the capture timed no OFFER or no ACK (${seen.length} DHCP messages seen)`);
      runs.get(t.name)!.push(run);
      h.log(`${t.name} at ${rate}/s: ${run.unansweredPercent.toFixed(3)}% exchanges unanswered; ACK ${latencyNote(run.ack)}; OFFER ${latencyNote(run.offer)}; capture dropped ${dropped}`);
    }
  }
  return runs;
}

/** One quantile of each run's latencies, in milliseconds. */
export const latencyMs = (runs: TailRun[], of: 'ack' | 'offer', q: number): number[] => runs.map((r) => 1000 * percentile(r[of].latencies, 100 * q));

/** A one-line account of one run's latencies. */
function latencyNote(a: Answering): string {
  const ms = (q: number) => (1000 * percentile(a.latencies, 100 * q)).toFixed(2);
  return `${a.answered}/${a.requests} answered, p50 ${ms(0.5)} p99 ${ms(0.99)} p99.9 ${ms(0.999)} ms`;
}

/** Median over the runs of one quantile, for notes. */
export function medianLatencyMs(h: BenchHarness, runs: TailRun[], of: 'ack' | 'offer', q: number): string {
  return median(h, latencyMs(runs, of, q)).toFixed(2);
}
