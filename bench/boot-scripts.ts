import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../test/helpers/bundle.js';
import { macOf, startFleet } from './lib/fleet.js';
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
 * a boot decision from the CMDB, a template render and a boot event written. Reference:
 * nginx serving the same scripts pre-rendered as static files.
 */
export default async function bootScripts(h: BenchHarness): Promise<BenchRow[]> {
  const livery = await startFleet(h.tmpDir, MACHINES, { image: 'bench', machineDoor: MACHINE_DOOR });
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
    const figures = await wrkAgainstNginx(h, { liveryUrl: livery.url, staticRoot, paths });
    return [
      h.row({
        name: 'boot scripts: GET /boot/<mac>.ipxe, 10k machines',
        unit: 'req/s',
        higherIsBetter: true,
        livery: figures.liveryRequestsPerSecond,
        reference: figures.nginxRequestsPerSecond,
        referenceName: 'nginx (pre-rendered files)',
        notes: 'wrk -t1 -c32, 5 s per run; livery decides per request (from its copy of the CMDB, change counter read per request), renders and writes a boot event per request (group commit), one process; machine door limits lifted (one loopback address speaks for the fleet)',
      }),
      h.row({ name: 'boot scripts: p99 latency, 10k machines', unit: 'ms', higherIsBetter: false, livery: figures.liveryP99Ms, notes: 'same runs, 32 connections' }),
    ];
  } finally {
    await livery.close();
  }
}
