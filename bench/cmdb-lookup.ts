import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { macOf, serveFleet, startFleet } from './lib/fleet.js';
import type { ServeProcess } from '../test/helpers/cli.js';
import type { BenchHarness, BenchRow } from './lib/harness.js';
import { wrkAgainstNginx } from './lib/wrk.js';

const MACHINES = 100_000;

/**
 * GET /v1/machines/<mac> with 100,000 machines in the CMDB, against nginx serving the same
 * JSON documents as static files: the cost of a CMDB lookup plus the API over a file read.
 * Measured in one process, then as `livery serve` is deployed (HTTP processes one per core).
 */
export default async function cmdbLookup(h: BenchHarness): Promise<BenchRow[]> {
  h.log(`starting livery with ${MACHINES} machines`);
  const livery = await startFleet(h.tmpDir, MACHINES);
  const staticRoot = join(h.tmpDir, 'static');
  let served: ServeProcess | null = null;
  try {
    const sample = Array.from({ length: 2000 }, (_, k) => (k * 7919) % MACHINES);
    mkdirSync(join(staticRoot, 'v1', 'machines'), { recursive: true });
    for (const i of sample) writeFileSync(join(staticRoot, 'v1', 'machines', macOf(i)), JSON.stringify(livery.cmdb.machines.get(macOf(i))));
    const paths = sample.map((i) => `/v1/machines/${macOf(i)}`);
    const liveryHeaders = { authorization: `Bearer ${livery.bootstrapToken}` };
    const single = await wrkAgainstNginx(h, { liveryUrl: livery.url, liveryHeaders, staticRoot, paths });
    served = await serveFleet(h.tmpDir, livery);
    const deployed = await wrkAgainstNginx(h, { liveryUrl: served.url, liveryHeaders, staticRoot, paths });
    const what = 'livery with bearer-token auth (tokens kept per process) and a SQLite lookup of the machine per request';
    return [
      h.row({
        name: 'cmdb: GET /v1/machines/<mac>, 100k machines',
        unit: 'req/s',
        higherIsBetter: true,
        livery: single.liveryRequestsPerSecond,
        reference: single.nginxRequestsPerSecond,
        referenceName: 'nginx (static JSON files)',
        notes: `wrk -t1 -c32, 5 s per run; ${what}; one livery process (the HTTP app in the bench process)`,
      }),
      h.row({
        name: 'cmdb: GET /v1/machines/<mac>, 100k machines, livery serve (HTTP processes one per core)',
        unit: 'req/s',
        higherIsBetter: true,
        livery: deployed.liveryRequestsPerSecond,
        reference: deployed.nginxRequestsPerSecond,
        referenceName: 'nginx (static JSON files)',
        notes: `wrk -t1 -c32, 5 s per run, on the same 2 cores as the server; ${what}; the built livery serve with http.workers 0 (2 HTTP processes here), as deployed`,
      }),
    ];
  } finally {
    await (served ? served.stop() : livery.close());
  }
}
