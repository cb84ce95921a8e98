import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type BenchHarness } from './harness.js';
import { startNginx } from './nginx.js';

export interface WrkResult {
  requestsPerSecond: number;
  p99Ms: number;
  /** Non-2xx/3xx answers: the server said no. */
  statusErrors: number;
  /** Socket errors and requests over wrk's 2 s timeout: the server was slow or gone. */
  otherErrors: number;
}

/**
 * Drives `wrk` (one thread, so the server keeps the other core) at base URL with paths drawn
 * at random from `paths`; returns requests/s and p99 latency.
 */
export async function wrk(opts: {
  dir: string;
  baseUrl: string;
  paths: string[];
  seconds: number;
  connections: number;
  headers?: Record<string, string>;
}): Promise<WrkResult> {
  const headers = Object.entries(opts.headers ?? {}).map(([k, v]) => `[${JSON.stringify(k)}]=${JSON.stringify(v)}`).join(',');
  const list = join(opts.dir, `paths-${Date.now()}.lua`);
  writeFileSync(
    list,
    `local paths = {${opts.paths.map((p) => JSON.stringify(p)).join(',')}}
math.randomseed(42)
local headers = {${headers}}
request = function() return wrk.format("GET", paths[math.random(#paths)], headers) end
done = function(summary, latency, requests)
  io.write(string.format("LIVERY rps=%f p99us=%d status=%d other=%d\\n", summary.requests / (summary.duration / 1e6), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
`,
  );
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      'wrk',
      ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--latency', '-s', list, opts.baseUrl],
      { timeout: (opts.seconds + 30) * 1000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`wrk failed: ${err.message} ${stderr}`)) : resolve(stdout)),
    ),
  );
  const m = /LIVERY rps=([0-9.]+) p99us=([0-9]+) status=([0-9]+) other=([0-9]+)/.exec(out);
  if (!m) throw new Error(`unexpected wrk output:\n${out}`);
  return { requestsPerSecond: Number(m[1]), p99Ms: Number(m[2]) / 1000, statusErrors: Number(m[3]), otherErrors: Number(m[4]) };
}

/** Per-run figures of one livery-against-nginx comparison, in run order. */
export interface WrkComparison {
  liveryRequestsPerSecond: number[];
  liveryP99Ms: number[];
  nginxRequestsPerSecond: number[];
}

/**
 * Serves `staticRoot` with nginx and, after a 2 s warm-up of each, `h.runs` times drives wrk
 * (5 s, 32 connections) at livery and then at nginx over the same `paths`. A livery error
 * status fails the benchmark, since the figure would then count refusals rather than work;
 * socket errors and timeouts are only logged.
 */
export async function wrkAgainstNginx(
  h: BenchHarness,
  opts: { liveryUrl: string; liveryHeaders?: Record<string, string>; staticRoot: string; paths: string[] },
): Promise<WrkComparison> {
  const nginxPort = await freePort();
  const nginx = await startNginx(h.tmpDir, opts.staticRoot, nginxPort);
  const result: WrkComparison = { liveryRequestsPerSecond: [], liveryP99Ms: [], nginxRequestsPerSecond: [] };
  const load = { dir: h.tmpDir, paths: opts.paths, seconds: 5, connections: 32 };
  try {
    // One unmeasured run each first: a server that has been up a while has compiled its hot
    // paths and filled its caches, and a cold first run would count the warming.
    await wrk({ ...load, seconds: 2, baseUrl: opts.liveryUrl, headers: opts.liveryHeaders });
    await wrk({ ...load, seconds: 2, baseUrl: `http://127.0.0.1:${nginxPort}` });
    for (let run = 0; run < h.runs; run++) {
      const l = await wrk({ ...load, baseUrl: opts.liveryUrl, headers: opts.liveryHeaders });
      const n = await wrk({ ...load, baseUrl: `http://127.0.0.1:${nginxPort}` });
      if (l.statusErrors > 0) throw new Error(`livery answered ${l.statusErrors} requests with an error status`);
      if (l.otherErrors > 0) h.log(`run ${run + 1}: ${l.otherErrors} requests timed out or failed at the socket`);
      result.liveryRequestsPerSecond.push(l.requestsPerSecond);
      result.liveryP99Ms.push(l.p99Ms);
      result.nginxRequestsPerSecond.push(n.requestsPerSecond);
      h.log(`run ${run + 1}: livery ${l.requestsPerSecond.toFixed(0)}/s (p99 ${l.p99Ms} ms), nginx ${n.requestsPerSecond.toFixed(0)}/s`);
    }
  } finally {
    await nginx.stop();
  }
  return result;
}
