/**
 * The 1,000-machine boot storm (as in bench/storm.ts) through two livery nodes sharing one
 * segment and one PostgreSQL CMDB, against the same storm through one node on the same kind
 * of PostgreSQL rig (bench/storm-pair-rig.ts). Target: two nodes no slower than one.
 */
import { join } from 'node:path';
import type { StormReport } from '../src/lab/storm/report.js';
import type { BenchHarness, BenchRow } from './lib/harness.js';
import { startPairStormRig } from './storm-pair-rig.js';
import { describeStorm, MB, MINIMAL_IMAGE } from './storm-rack.js';

const MACHINES = 1000;
const MAX_STORM_S = 900;

export default async function stormPair(h: BenchHarness): Promise<BenchRow[]> {
  const started = Date.now();
  const storm = async (nodes: 1 | 2): Promise<StormReport> => {
    const rig = await startPairStormRig(join(h.tmpDir, `nodes-${nodes}`), { nodes, machines: MACHINES, sizes: MINIMAL_IMAGE });
    try {
      // Within the runner's limit, with room to stop the nodes and remove the cluster: past it the runner abandons the benchmark as it stands.
      const left = Math.floor((h.timeoutMs - 120_000 - (Date.now() - started)) / 1000);
      if (left < 60) throw new Error('no time left for another storm within BENCH_TIMEOUT_S');
      const r = await rig.storm({ clients: MACHINES, deadlineS: Math.min(MAX_STORM_S, left) });
      h.log(`${nodes} node(s): ${r.totalSeconds} s; ${describeStorm(r)}`);
      return r;
    } finally {
      await rig.close();
    }
  };
  const one = await storm(1);
  const two = await storm(2);
  const z = MINIMAL_IMAGE;
  return [
    h.row({
      name: `boot storm: ${MACHINES} machines through two nodes on one segment (leases in PostgreSQL), first DISCOVER to last byte`,
      unit: 's',
      higherIsBetter: false,
      livery: [two.totalSeconds],
      reference: [one.totalSeconds],
      referenceName: 'one node',
      notes:
        `kernel ${z.kernel / MB} MiB, initrd ${z.initrd / MB} MiB, rootfs ${z.rootfs / MB} MiB per machine, all powered on at once; each node http.workers 0, both on this machine's cores; ` +
        `ratio = one node's seconds / two nodes' (target ≥ 1); two nodes: ${describeStorm(two)}; one node: ${one.failures} failed, ${one.retries.count} retried`,
    }),
  ];
}
