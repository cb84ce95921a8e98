import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { DhcpHubStats } from './dhcp-hub.js';
import { STAGES, type MachineResult, type Stage } from './machine.js';

export const PERCENTILES = ['p50', 'p95', 'p99', 'max'] as const;
export type Percentile = (typeof PERCENTILES)[number];

/** Seconds one stage took, over the machines that completed it. */
export type StageStats = { count: number } & Record<Percentile, number>;

export interface StormReport {
  /** Wall-clock time (ms since the epoch) of the storm clock's zero: the machines' times are from there. */
  startedAt: number;
  clients: number;
  concurrency: number;
  ok: number;
  failures: number;
  /** From the first DISCOVER to the last byte (or last give-up) of any machine. */
  totalSeconds: number;
  stages: Record<Stage, StageStats>;
  /** At each percentile, the stage that took longest. */
  slowestStage: Record<Percentile, Stage | null>;
  /** Every artifact byte of every machine over the span from the first artifact request to the last byte. */
  artifacts: { bytes: number; seconds: number; mbPerSecond: number };
  retransmissions: { dhcp: number; tftp: number };
  /** DHCP replies nobody was waiting for any more: mostly answers to retransmissions, i.e. replies slower than the wait. */
  dhcpLateReplies: number;
  /**
   * Seconds the simulator's own event loop was late (p99 and worst over the storm): every
   * machine shares it, so a stage's time includes up to this much of the simulator's own wait.
   */
  simulatorLoopDelay: { p99: number; max: number };
  /** DHCP rounds, TFTP transfers and HTTP requests that failed and were started over, and why. */
  retries: { count: number; reasons: Reason[] };
  failuresByStage: Partial<Record<Stage, number>>;
  /** Why machines failed. */
  errors: Reason[];
  machines: Pick<MachineResult, 'mac' | 'ip' | 'imageId' | 'ok' | 'failure' | 'acks' | 'retries'>[];
}

/** A cause (MACs, addresses and byte counts blanked out, so equal causes group) and how often it happened, most common first. */
export interface Reason {
  error: string;
  count: number;
}

/** Nearest-rank percentile of ascending `sorted` (empty → 0). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(3));

/** Starts watching this process's event-loop delay; the function returned stops and reads it. */
export function watchLoopDelay(): () => StormReport['simulatorLoopDelay'] {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return () => {
    histogram.disable();
    return { p99: seconds(histogram.percentile(99) / 1e6), max: seconds(histogram.max / 1e6) };
  };
}

export function summarize(
  results: readonly MachineResult[],
  run: { startedAt: number; concurrency: number; dhcp: DhcpHubStats; loopDelay: StormReport['simulatorLoopDelay'] },
): StormReport {
  const stages = {} as Record<Stage, StageStats>;
  for (const stage of STAGES) {
    const times = results.flatMap((r) => (r.stages[stage] ? [r.stages[stage].ms] : [])).sort((a, b) => a - b);
    stages[stage] = {
      count: times.length,
      p50: seconds(percentile(times, 50)),
      p95: seconds(percentile(times, 95)),
      p99: seconds(percentile(times, 99)),
      max: seconds(percentile(times, 100)),
    };
  }
  const slowestStage = {} as Record<Percentile, Stage | null>;
  for (const p of PERCENTILES) {
    const ranked = STAGES.filter((s) => stages[s].count > 0).sort((a, b) => stages[b][p] - stages[a][p]);
    slowestStage[p] = ranked[0] ?? null;
  }
  const failed = results.filter((r) => !r.ok);
  const failures = failed.flatMap((r) => (r.failure ? [r.failure] : []));
  const failuresByStage: Partial<Record<Stage, number>> = {};
  for (const f of failures) failuresByStage[f.stage] = (failuresByStage[f.stage] ?? 0) + 1;
  const retries = results.flatMap((r) => r.retries);
  const span = (times: { start: number; end: number }[]) =>
    times.length === 0 ? 0 : Math.max(...times.map((t) => t.end)) - Math.min(...times.map((t) => t.start));
  const artifactTimes = results.flatMap((r) => {
    const t = r.stages['http-artifacts'];
    return t ? [{ start: t.startMs, end: t.startMs + t.ms }] : [];
  });
  const artifactBytes = results.reduce((n, r) => n + r.artifactBytes, 0);
  const artifactMs = span(artifactTimes);
  return {
    startedAt: run.startedAt,
    clients: results.length,
    concurrency: run.concurrency,
    ok: results.length - failed.length,
    failures: failed.length,
    totalSeconds: seconds(span(results.map((r) => ({ start: r.startMs, end: r.endMs })))),
    stages,
    slowestStage,
    artifacts: { bytes: artifactBytes, seconds: seconds(artifactMs), mbPerSecond: artifactMs > 0 ? Number((artifactBytes / 1e6 / (artifactMs / 1000)).toFixed(1)) : 0 },
    retransmissions: { dhcp: run.dhcp.retransmissions, tftp: results.reduce((n, r) => n + r.tftpRetransmissions, 0) },
    dhcpLateReplies: run.dhcp.unmatched,
    simulatorLoopDelay: run.loopDelay,
    retries: { count: retries.length, reasons: tally(retries) },
    failuresByStage,
    errors: tally(failures),
    machines: results.map((r) => ({ mac: r.mac, ip: r.ip, imageId: r.imageId, ok: r.ok, failure: r.failure, acks: r.acks, retries: r.retries })),
  };
}

function tally(causes: { stage: Stage; error: string }[]): Reason[] {
  const counts = new Map<string, number>();
  for (const c of causes) {
    const key = `${c.stage}: ${generic(c.error)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([error, count]) => ({ error, count }));
}

/** A message with the machine-specific parts (MACs, addresses, byte counts) blanked, so equal causes group together. */
function generic(message: string): string {
  return message
    .replace(/([0-9a-f]{2}:){5}[0-9a-f]{2}/gi, '<mac>')
    .replace(/\b\d{1,3}(\.\d{1,3}){3}\b/g, '<ip>')
    .replace(/\b\d{4,}\b/g, '<n>');
}
