import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { macOf, startFleet } from './lib/fleet.js';
import type { BenchHarness, BenchRow } from './lib/harness.js';
import { wrkAgainstNginx } from './lib/wrk.js';

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
    const figures = await wrkAgainstNginx(h, { liveryUrl: livery.url, liveryHeaders: { authorization: `Bearer ${livery.bootstrapToken}` }, staticRoot, paths });
    return [
      h.row({
        name: 'cmdb: GET /v1/machines/<mac>, 100k machines',
        unit: 'req/s',
        higherIsBetter: true,
        livery: figures.liveryRequestsPerSecond,
        reference: figures.nginxRequestsPerSecond,
        referenceName: 'nginx (static JSON files)',
        notes: 'wrk -t1 -c32, 5 s per run; livery with bearer-token auth (tokens kept per process) and a SQLite lookup of the machine per request, one process',
      }),
    ];
  } finally {
    await livery.close();
  }
}
