/**
 * Only the storm simulator's rollout, on a rig of its own (no storms before it): for
 * reproducing a rollout problem at a smaller size, or measuring the 1,000-machine rollout alone.
 *
 *   make build && flock /work/wt/_vm.lock npx tsx bench/storm-rollout-only.ts \
 *     --clients 1000 --waves 1,10%,50%,100% [--mib 8,6,80] [--max-parallel N] [--storm-first] [--keep DIR]
 *
 * Prints livery's record of the rollout (seconds per wave and in all) and, for a machine that
 * did not boot, what the simulator saw of it and livery's events for its MAC.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCmdb } from '../src/cmdb/index.js';
import { databasePath } from '../src/daemon/paths.js';
import { startStormRig } from './storm.js';

const { values: a } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    waves: { type: 'string', default: '1,10%,50%,100%' },
    mib: { type: 'string', default: '8,6,80' },
    'max-parallel': { type: 'string' },
    'deadline-s': { type: 'string', default: '1800' },
    keep: { type: 'string' },
    // As bench/storm.ts runs it: after a storm of every machine on the same livery (leases, events).
    'storm-first': { type: 'boolean', default: false },
    // livery's power.timeoutMs: a short one makes livery retry resets the BMC did act on.
    'bmc-timeout-ms': { type: 'string' },
    'boot-timeout': { type: 'string' },
  },
});
const clients = Number(a.clients);
const [kernel, initrd, rootfs] = a.mib.split(',').map((n) => Number(n) * 1024 * 1024) as [number, number, number];
const dir = a.keep ?? mkdtempSync(join(tmpdir(), 'livery-storm-rollout-'));
const rig = await startStormRig(dir, { machines: clients, sizes: { kernel, initrd, rootfs }, powerTimeoutMs: a['bmc-timeout-ms'] ? Number(a['bmc-timeout-ms']) : undefined });
let ok = false;
try {
  if (a['storm-first']) {
    const s = await rig.storm({ clients, deadlineS: Number(a['deadline-s']) });
    console.log(`storm of ${clients} first: ${s.totalSeconds} s, ${s.failures} failed`);
  }
  const started = Date.now();
  const r = await rig.rollout({ clients, waves: a.waves, deadlineS: Number(a['deadline-s']), maxParallel: a['max-parallel'] ? Number(a['max-parallel']) : undefined, bootTimeout: a['boot-timeout'] });
  const waves = r.waves.map((w) => `wave ${w.wave}: ${w.machines} machines ${w.state} in ${w.seconds} s`).join('\n  ');
  console.log(`rollout of ${clients} (artifacts ${a.mib} MiB): ${r.state} in ${r.totalSeconds} s (${((Date.now() - started) / 1000).toFixed(0)} s with setup)\n  ${waves}`);
  console.log(`max-parallel ${r.maxParallel}, at most ${r.report.concurrency} booting at once; ${r.report.ok} boots ok, ${r.report.failures} failed, ` +
    `dhcp retransmissions ${r.report.retransmissions.dhcp}, tftp ${r.report.retransmissions.tftp}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
  const odd = r.simulatorLog.split('\n').filter((l) => /failed at|reset while/.test(l));
  console.log(`simulator: ${odd.length} boots that failed or were cut short by a reset${odd.length ? `:\n  ${odd.slice(0, 40).join('\n  ')}` : ''}`);
  const why = [...r.report.errors, ...r.report.retries.reasons].map((e) => `${e.error} ×${e.count}`).join('\n  ');
  if (why) console.log(`why boots were retried or failed:\n  ${why}`);
  if (a.keep) {
    writeFileSync(join(dir, 'livery.log'), rig.serverLog());
    writeFileSync(join(dir, 'simulator.log'), r.simulatorLog);
    writeFileSync(join(dir, 'report.json'), JSON.stringify(r.report, null, 1));
  }
  ok = r.state === 'succeeded' && r.report.failures === 0;
  if (!ok) {
    for (const m of r.report.machines.filter((x) => !x.ok)) console.log(`simulator: ${m.mac} failed: ${JSON.stringify(m.failure)}`);
    const cmdb = openCmdb(databasePath(rig.dataDir));
    try {
      for (const m of cmdb.rollouts.machines(cmdb.rollouts.list(1)[0]!.id).filter((x) => x.state === 'failed')) {
        const machine = cmdb.machines.get(m.machineId);
        console.log(`livery: ${machine.hostname} ${JSON.stringify(m.detail)}`);
        for (const e of cmdb.events.forMac(machine.macs[0]!).slice(-12)) console.log(`  ${e.at} ${e.type} ${JSON.stringify(e.detail)}`);
      }
    } finally {
      cmdb.close();
    }
  }
} finally {
  await rig.close();
  if (!a.keep) rmSync(dir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
