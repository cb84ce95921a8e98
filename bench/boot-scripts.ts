import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../test/helpers/bundle.js';
import { macOf, serveFleet, startFleet } from './lib/fleet.js';
import type { ServeProcess } from '../test/helpers/cli.js';
import type { BenchHarness, BenchRow } from './lib/harness.js';
import { wrkAgainstNginx } from './lib/wrk.js';

const MACHINES = 10_000;
/**
 * wrk speaks for the whole fleet from one loopback address, asking for each script many times
 * a second: the machine door's limits (which bound what one address or MAC on a hostile boot
 * network can make livery write) would refuse nearly all of it. Lifted, so the figure counts
 * work done, not refusals; the limits' own cost is still paid per request.
 */
const MACHINE_DOOR = { perAddressPerSecond: 1e9, perAddressBurst: 1e9, perMacPerSecond: 1e9, perMacBurst: 1e9 };

/**
 * GET /boot/<mac>.ipxe with 10,000 machines following one image's channel: each request is
 * a boot decision from the CMDB, a template render and a boot event written. Measured twice:
 * livery's HTTP app in one process, then `livery serve` as deployed (HTTP processes one per
 * core). Reference: nginx serving the same scripts pre-rendered as static files.
 */
export default async function bootScripts(h: BenchHarness): Promise<BenchRow[]> {
  const livery = await startFleet(h.tmpDir, MACHINES, { image: 'bench', machineDoor: MACHINE_DOOR });
  let served: ServeProcess | null = null;
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
    const single = await wrkAgainstNginx(h, { liveryUrl: livery.url, staticRoot, paths });
    served = await serveFleet(h.tmpDir, livery, MACHINE_DOOR);
    const deployed = await wrkAgainstNginx(h, { liveryUrl: served.url, staticRoot, paths });
    const what =
      'livery decides per request (from its copy of the CMDB: an edit through the same process is in the next script, one from another process within 10 ms, as in the DHCP server), renders, and hands a boot event per request to its writer thread (group commit; the script does not wait for it); machine door limits lifted (one loopback address speaks for the fleet)';
    return [
      h.row({
        name: 'boot scripts: GET /boot/<mac>.ipxe, 10k machines',
        unit: 'req/s',
        higherIsBetter: true,
        livery: single.liveryRequestsPerSecond,
        reference: single.nginxRequestsPerSecond,
        referenceName: 'nginx (pre-rendered files)',
        notes: `wrk -t1 -c32, 5 s per run; one livery process (the HTTP app in the bench process); ${what}`,
      }),
      h.row({ name: 'boot scripts: p99 latency, 10k machines', unit: 'ms', higherIsBetter: false, livery: single.liveryP99Ms, notes: 'same runs, 32 connections' }),
      h.row({
        name: 'boot scripts: GET /boot/<mac>.ipxe, 10k machines, livery serve (HTTP processes one per core)',
        unit: 'req/s',
        higherIsBetter: true,
        livery: deployed.liveryRequestsPerSecond,
        reference: deployed.nginxRequestsPerSecond,
        referenceName: 'nginx (pre-rendered files)',
        notes: `wrk -t1 -c32, 5 s per run, on the same 2 cores as the server; the built livery serve with http.workers 0 (2 HTTP processes here), as deployed; ${what}`,
      }),
      h.row({ name: 'boot scripts: p99 latency, 10k machines, livery serve', unit: 'ms', higherIsBetter: false, livery: deployed.liveryP99Ms, notes: 'same runs, 32 connections' }),
    ];
  } finally {
    await (served ? served.stop() : livery.close());
  }
}
