import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

/** One line of bench/results.json: livery's figure beside the reference tool's, medians of `runs`. */
export interface BenchRow {
  name: string;
  unit: string;
  livery: number;
  reference: number | null;
  referenceName: string | null;
  /** > 1 means livery is better, whichever direction the unit runs. */
  ratio: number | null;
  runs: number;
  higherIsBetter: boolean;
  min?: { livery: number; reference: number | null };
  max?: { livery: number; reference: number | null };
  notes?: string;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface BenchHarness {
  /** How many times each figure is measured (BENCH_RUNS, default 3). */
  runs: number;
  /** A scratch folder for this benchmark, removed afterwards. */
  tmpDir: string;
  /** How long the runner gives this benchmark (BENCH_TIMEOUT_S) before abandoning it without cleaning up. */
  timeoutMs: number;
  median(values: number[]): Spread;
  /** Builds a row from raw per-run figures. */
  row(r: { name: string; unit: string; higherIsBetter: boolean; livery: number[]; reference?: number[]; referenceName?: string; notes?: string }): BenchRow;
  log(message: string): void;
}

export function median(values: number[]): Spread {
  if (values.length === 0) throw new Error('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! };
}

const round = (v: number) => Number(v.toPrecision(4));

export function makeRow(r: Parameters<BenchHarness['row']>[0]): BenchRow {
  const l = median(r.livery);
  const ref = r.reference && r.reference.length > 0 ? median(r.reference) : null;
  const ratio = ref && ref.median > 0 && l.median > 0 ? (r.higherIsBetter ? l.median / ref.median : ref.median / l.median) : null;
  return {
    name: r.name,
    unit: r.unit,
    livery: round(l.median),
    reference: ref ? round(ref.median) : null,
    referenceName: ref ? (r.referenceName ?? null) : null,
    ratio: ratio === null ? null : round(ratio),
    runs: r.livery.length,
    higherIsBetter: r.higherIsBetter,
    min: { livery: round(l.min), reference: ref ? round(ref.min) : null },
    max: { livery: round(l.max), reference: ref ? round(ref.max) : null },
    ...(r.notes ? { notes: r.notes } : {}),
  };
}

/** A free TCP port on loopback (bound then released; fine for a benchmark's own servers). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The first line a tool prints about its version, for the results header. */
export function versionOf(cmd: string, args: string[] = ['--version']): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 }).split('\n')[0]!.trim();
  } catch (err) {
    const e = err as { stderr?: string };
    return (e.stderr ?? '').split('\n')[0]!.trim() || 'unknown';
  }
}
