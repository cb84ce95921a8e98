/**
 * `make bench [BENCH=name]`: runs every bench/<name>.ts (or the named ones), each bounded in time,
 * and writes bench/results.json and bench/results.md. Each module exports
 * `default async (h: BenchHarness) => BenchRow[]`.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeRow, median, type BenchHarness, type BenchRow } from './lib/harness.js';

const here = import.meta.dirname;
const runs = Number(process.env.BENCH_RUNS ?? 3);
// A guard against a hung benchmark, not a budget: dhcp with BENCH_RUNS=5 takes about 25 minutes.
const limitMs = Number(process.env.BENCH_TIMEOUT_S ?? 2400) * 1000;
const wanted = process.argv.slice(2).flatMap((a) => a.split(/[ ,]+/)).filter(Boolean);
// A benchmark is a module with a default export; the others (lib, nginx, wrk, fleet…) are its helpers.
const all = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && /^export default /m.test(readFileSync(join(here, f), 'utf8')))
  .map((f) => basename(f, '.ts'))
  .sort();
const selected = wanted.length ? wanted : all;
for (const w of selected) if (!all.includes(w)) throw new Error(`no benchmark ${w}; have: ${all.join(', ')}`);

const resultsPath = join(here, 'results.json');
// A partial run (BENCH=x) replaces only its own rows.
const previous: BenchRow[] = wanted.length && existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : [];
const rows: BenchRow[] = [];
const failures: string[] = [];

for (const name of selected) {
  const tmp = mkdtempSync(join(tmpdir(), `livery-bench-${name}-`));
  const h: BenchHarness = { runs, tmpDir: tmp, timeoutMs: limitMs, median, row: makeRow, log: (m) => console.error(`[${name}] ${m}`) };
  const started = Date.now();
  try {
    const mod = (await import(pathToFileURL(join(here, `${name}.ts`)).href)) as { default: (h: BenchHarness) => Promise<BenchRow[]> };
    let timer: NodeJS.Timeout | undefined;
    const got = await Promise.race([
      mod.default(h),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${limitMs / 1000} s`)), limitMs))),
    ]).finally(() => clearTimeout(timer));
    rows.push(...got);
    for (const r of got) {
      console.log(`${name}: ${r.name}: livery ${r.livery} ${r.unit}` + (r.reference !== null ? `, ${r.referenceName} ${r.reference} ${r.unit}, ratio ${r.ratio}` : ''));
    }
  } catch (err) {
    failures.push(`${name}: ${(err as Error).message}`);
    console.error(`[${name}] FAILED: ${(err as Error).stack}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    console.error(`[${name}] ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

const names = new Set(rows.map((r) => r.name));
const merged = [...previous.filter((r) => !names.has(r.name)), ...rows];
writeFileSync(resultsPath, JSON.stringify(merged, null, 2) + '\n');
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
const fmt = (v: number | null) => (v === null ? '–' : String(v));
const md = [
  `# livery benchmarks`,
  '',
  `Machine: ${machine}. Generated ${new Date().toISOString()} by \`make bench\`; each figure is the median of its runs (min–max in brackets). Ratio > 1 means livery is better.`,
  '',
  '| benchmark | unit | livery | reference | ratio | runs | notes |',
  '|---|---|---|---|---|---|---|',
  ...merged.map(
    (r) =>
      `| ${r.name} | ${r.unit} | ${r.livery} (${fmt(r.min?.livery ?? null)}–${fmt(r.max?.livery ?? null)}) | ` +
      (r.reference === null ? '–' : `${r.referenceName} ${r.reference} (${fmt(r.min?.reference ?? null)}–${fmt(r.max?.reference ?? null)})`) +
      ` | ${fmt(r.ratio)} | ${r.runs} | ${r.notes ?? ''} |`,
  ),
  '',
];
writeFileSync(join(here, 'results.md'), md.join('\n'));
console.log(`wrote ${resultsPath} (${merged.length} rows)`);
if (failures.length) {
  console.error(`benchmarks that failed:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
