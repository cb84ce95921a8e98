import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../src/config/index.js';
import { startLivery } from '../src/daemon/index.js';
import { createLogger } from '../src/log.js';
import { freePort, type BenchHarness, type BenchRow } from './lib.js';
import { startNginx } from './nginx.js';
import { wrk } from './wrk.js';

const MACHINES = 100_000;
const macOf = (i: number) => `02:00:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

/**
 * GET /v1/machines/<mac> with 100,000 machines in the CMDB, against nginx serving the same
 * JSON documents as static files: the cost of a CMDB lookup plus the API over a file read.
 */
export default async function cmdbLookup(h: BenchHarness): Promise<BenchRow[]> {
  const config = resolveConfig({ dataDir: join(h.tmpDir, 'var'), log: { level: 'silent' }, http: { listen: `127.0.0.1:${await freePort()}` }, tftp: { enabled: false } });
  const livery = await startLivery(config, createLogger('silent'));
  const staticRoot = join(h.tmpDir, 'static');
  try {
    h.log(`inserting ${MACHINES} machines`);
    livery.cmdb.tx(() => {
      for (let i = 0; i < MACHINES; i++) livery.cmdb.machines.create({ macs: [macOf(i)], hostname: `n${i}`, labels: { rack: `r${i % 40}` }, site: 'bench' });
    });
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
        if (l.errors > 0) throw new Error(`livery answered ${l.errors} requests with errors`);
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
