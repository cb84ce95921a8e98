import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../test/helpers/bundle.js';
import { macOf, startFleet } from './fleet.js';
import { freePort, type BenchHarness, type BenchRow } from './lib.js';
import { startNginx } from './nginx.js';
import { wrk } from './wrk.js';

const MACHINES = 10_000;

/**
 * GET /boot/<mac>.ipxe with 10,000 machines following one image's channel: each request is
 * a boot decision from the CMDB, a template render and a boot event written. Reference:
 * nginx serving the same scripts pre-rendered as static files.
 */
export default async function bootScripts(h: BenchHarness): Promise<BenchRow[]> {
  const livery = await startFleet(h.tmpDir, MACHINES, { image: 'bench' });
  try {
    const { tar } = await makeBundle('bench', '1');
    const auth = { authorization: `Bearer ${livery.bootstrapToken}` };
    const res = await fetch(`${livery.url}/v1/images?channel=stable`, { method: 'POST', body: tar, headers: { ...auth, 'content-type': 'application/x-tar' } });
    if (res.status !== 201) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
    const sample = Array.from({ length: 2000 }, (_, k) => (k * 7919) % MACHINES);
    const paths = sample.map((i) => `/boot/${macOf(i)}.ipxe`);
    const staticRoot = join(h.tmpDir, 'static');
    mkdirSync(join(staticRoot, 'boot'), { recursive: true });
    for (const p of paths) writeFileSync(join(staticRoot, p), await (await fetch(livery.url + p)).text());
    const nginxPort = await freePort();
    const nginx = await startNginx(h.tmpDir, staticRoot, nginxPort);
    const ours: number[] = [];
    const theirs: number[] = [];
    const p99s: number[] = [];
    try {
      for (let run = 0; run < h.runs; run++) {
        const l = await wrk({ dir: h.tmpDir, baseUrl: livery.url, paths, seconds: 5, connections: 32 });
        const n = await wrk({ dir: h.tmpDir, baseUrl: `http://127.0.0.1:${nginxPort}`, paths, seconds: 5, connections: 32 });
        if (l.statusErrors > 0) throw new Error(`livery answered ${l.statusErrors} requests with an error status`);
        if (l.otherErrors > 0) h.log(`run ${run + 1}: ${l.otherErrors} requests timed out or failed at the socket`);
        ours.push(l.requestsPerSecond);
        theirs.push(n.requestsPerSecond);
        p99s.push(l.p99Ms);
        h.log(`run ${run + 1}: livery ${l.requestsPerSecond.toFixed(0)}/s p99 ${l.p99Ms} ms; nginx ${n.requestsPerSecond.toFixed(0)}/s`);
      }
    } finally {
      await nginx.stop();
    }
    return [
      h.row({
        name: 'boot scripts: GET /boot/<mac>.ipxe, 10k machines',
        unit: 'req/s',
        higherIsBetter: true,
        livery: ours,
        reference: theirs,
        referenceName: 'nginx (pre-rendered files)',
        notes: 'wrk -t1 -c32, 5 s per run; livery decides, renders and writes a boot event per request, one process',
      }),
      h.row({ name: 'boot scripts: p99 latency, 10k machines', unit: 'ms', higherIsBetter: false, livery: p99s, notes: 'same runs, 32 connections' }),
    ];
  } finally {
    await livery.close();
  }
}
