import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { macOf, startFleet } from './fleet.js';
import { freePort, type BenchHarness, type BenchRow } from './lib.js';
import { startNginx } from './nginx.js';
import { wrk } from './wrk.js';

const MACHINES = 100_000;

/**
 * GET /v1/machines/<mac> with 100,000 machines in the CMDB, against nginx serving the same
 * JSON documents as static files: the cost of a CMDB lookup plus the API over a file read.
 */
export default async function cmdbLookup(h: BenchHarness): Promise<BenchRow[]> {
  h.log(`starting livery with ${MACHINES} machines`);
  const livery = await startFleet(h.tmpDir, MACHINES);
  const staticRoot = join(h.tmpDir, 'static');
  try {
    const sample = Array.from({ length: 2000 }, (_, k) => (k * 7919) % MACHINES);
    mkdirSync(join(staticRoot, 'v1', 'machines'), { recursive: true });
    for (const i of sample) writeFileSync(join(staticRoot, 'v1', 'machines', macOf(i)), JSON.stringify(livery.cmdb.machines.get(macOf(i))));
    const paths = sample.map((i) => `/v1/machines/${macOf(i)}`);
    const nginxPort = await freePort();
    const nginx = await startNginx(h.tmpDir, staticRoot, nginxPort);
    const ours: number[] = [];
    const theirs: number[] = [];
    try {
      for (let run = 0; run < h.runs; run++) {
        const l = await wrk({ dir: h.tmpDir, baseUrl: livery.url, paths, seconds: 5, connections: 32, headers: { authorization: `Bearer ${livery.bootstrapToken}` } });
        const n = await wrk({ dir: h.tmpDir, baseUrl: `http://127.0.0.1:${nginxPort}`, paths, seconds: 5, connections: 32 });
        if (l.statusErrors > 0) throw new Error(`livery answered ${l.statusErrors} requests with an error status`);
        if (l.otherErrors > 0) h.log(`run ${run + 1}: ${l.otherErrors} requests timed out or failed at the socket`);
        ours.push(l.requestsPerSecond);
        theirs.push(n.requestsPerSecond);
        h.log(`run ${run + 1}: livery ${l.requestsPerSecond.toFixed(0)}/s (p99 ${l.p99Ms} ms), nginx ${n.requestsPerSecond.toFixed(0)}/s`);
      }
    } finally {
      await nginx.stop();
    }
    return [
      h.row({
        name: 'cmdb: GET /v1/machines/<mac>, 100k machines',
        unit: 'req/s',
        higherIsBetter: true,
        livery: ours,
        reference: theirs,
        referenceName: 'nginx (static JSON files)',
        notes: 'wrk -t1 -c32, 5 s per run; livery with bearer-token auth and one SQLite lookup per request, one process',
      }),
    ];
  } finally {
    await livery.close();
  }
}
