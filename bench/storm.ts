/**
 * Boot storm: N virtual BIOS machines power on at once and boot through a real `livery serve`
 * (DHCP as a PXE ROM, TFTP loader, DHCP as iPXE, boot script, kernel + initrd + rootfs over
 * HTTP), livery in one private network namespace, the simulator (src/lab/storm) in the other.
 * Figures: seconds from the first DISCOVER to the last byte for N = 100, 500 and 1,000,
 * machines that failed at 5 % packet loss, and a rollout of 1,000 machines in waves through
 * their simulated BMCs (bench/storm-rollout.ts). test/lab/storm.test.ts runs a small storm on the same
 * rig (startStormRig).
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { openCmdb } from '../src/cmdb/index.js';
import { databasePath } from '../src/daemon/paths.js';
import type { StormReport } from '../src/lab/storm/report.js';
import { CLI } from '../test/helpers/cli.js';
import { startLiveryInNs, type NsLivery } from '../test/helpers/livery-ns.js';
import { createTestNet, hostIn, type TestNet } from '../test/helpers/netns.js';
import type { BenchHarness, BenchRow } from './lib/harness.js';
import { rolloutStorm, type RolloutStormArgs, type RolloutStormResult } from './storm-rollout.js';
import { describeStorm, LOADER, MB, MINIMAL_IMAGE, POOL, publishStormImage, registerRack, runIn, runStormIn, SERVER, STORM, type ArtifactSizes, type StormArgs } from './storm-rack.js';

export interface StormSetup {
  /** Machines registered in the CMDB (the storms may use fewer). */
  machines: number;
  sizes: ArtifactSizes;
  /** Random loss on both ends of the link, in percent of packets. */
  lossPercent?: number;
  /** livery's power.timeoutMs (one BMC request), when not its default. */
  powerTimeoutMs?: number;
}

export interface StormRig {
  imageId: string;
  dataDir: string;
  /** How the link drops packets, for the notes. */
  loss: string;
  /** Runs the simulator in the client namespace; resolves with its report. */
  storm(args: StormArgs): Promise<StormReport>;
  /** The simulator's rollout mode: a real rollout of a second image to `clients` machines with simulated BMCs (bench/storm-rollout.ts). */
  rollout(args: RolloutStormArgs): Promise<RolloutStormResult>;
  /** Everything livery has logged so far (JSON lines), to find out why machines failed. */
  serverLog(): string;
  /** Stops livery and deletes the namespaces (the caller removes `dir`). */
  close(): Promise<void>;
}

/**
 * A private link, a CMDB with `machines` registered machines following `storm@stable` and a
 * /16 subnet, a running `livery serve` (HTTP workers one per core, as in production) and the
 * published image. Everything it starts is stopped by close(), or right away if setup fails.
 */
export async function startStormRig(dir: string, setup: StormSetup): Promise<StormRig> {
  for (const built of [CLI, STORM]) statSync(built); // Both run from dist/: `make build` first.
  const net = createTestNet({ serverAddress: `${SERVER}/16` });
  let livery: NsLivery | undefined;
  const close = async () => {
    await livery?.stop();
    net.remove();
  };
  try {
    net.exec(net.client, 'ip', ['route', 'add', 'local', POOL.cidr, 'dev', 'lo']);
    const loss = setup.lossPercent ? dropRandomly(net, setup.lossPercent) : 'none';
    const dataDir = join(dir, 'var');
    const rack = openCmdb(databasePath(dataDir));
    let token: string;
    try {
      token = registerRack(rack, setup.machines);
    } finally {
      rack.close();
    }
    livery = await startLiveryInNs(net, dir, {
      dataDir,
      http: { listen: `${SERVER}:8080`, workers: 0 },
      // A rack is many machines at once: the global limits go up, the per-machine ones stay.
      // (With the default of 512 TFTP transfers, a 1,000-machine storm is told "server busy".)
      tftp: { listen: `${SERVER}:69`, maxTransfers: 4096 },
      dhcp: { enabled: true, interface: net.serverIf, address: SERVER, rateLimit: { globalPerSecond: 100_000 } },
      ...(setup.powerTimeoutMs ? { power: { timeoutMs: setup.powerTimeoutMs } } : {}),
    });
    const { output } = livery;
    const server = hostIn(net, net.server);
    const image = await publishStormImage(server, `http://${SERVER}:8080`, token, dir, setup.sizes);
    const cli = async <T>(args: string[]) => JSON.parse(await runIn(server, [CLI, '--url', `http://${SERVER}:8080`, '--token', token, '--json', ...args], 120_000)) as T;
    const simulate = async (args: string[], deadlineS: number, ready: string) => {
      const child = net.spawn(net.client, process.execPath, [STORM, '--server', SERVER, '--loader-path', LOADER, '--deadline-s', String(deadlineS), ...args]);
      let out = '';
      let err = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (err += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), (deadlineS + 30) * 1000);
      const report = new Promise<StormReport>((resolve, reject) =>
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          if (code === 0) resolve(JSON.parse(out) as StormReport);
          else reject(new Error(`the storm simulator exited ${signal ?? code}:\n${err.slice(-2000)}`));
        }),
      );
      while (!err.includes(ready)) {
        if (child.exitCode !== null || child.signalCode !== null) {
          await report;
          throw new Error(`the storm simulator ended before it printed "${ready}":\n${err.slice(-2000)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      return { report, log: () => err, stop: () => child.kill('SIGTERM') };
    };
    return {
      imageId: image.imageId,
      dataDir,
      loss,
      close,
      serverLog: output,
      rollout: (args) => rolloutStorm({ net, dir, sizes: setup.sizes, cli, simulate }, args),
      storm: (args) => runStormIn(hostIn(net, net.client), [SERVER], image, args),
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Drops `percent` % of the packets arriving at each end of the link. `tc … netem loss` would
 * do the same, but this kernel has no netem; nftables' random numbers do.
 */
function dropRandomly(net: TestNet, percent: number): string {
  const perMille = Math.round(percent * 10);
  for (const [ns, dev] of [[net.server, net.serverIf], [net.client, net.clientIf]] as const) {
    const rules = `table netdev storm {\n chain loss {\n  type filter hook ingress device "${dev}" priority 0; policy accept;\n  numgen random mod 1000 < ${perMille} drop\n }\n}\n`;
    const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: rules, encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`nft in ${ns}: ${r.stderr}`);
  }
  return `nftables: ${percent} % of packets dropped at random on arrival at each end`;
}

// --- the benchmark -------------------------------------------------------------------------

/**
 * 1 MiB artifacts: what is left is the boot path itself (DHCP twice, TFTP, the script, three
 * requests), not the bytes, which no server moves faster than the machine's copy rate.
 */
const SMALL = { kernel: 1 * MB, initrd: 1 * MB, rootfs: 1 * MB };
/** Issue #25's targets: the 1,000-machine storm, and the same with 1 MiB artifacts. */
const TARGET_SECONDS = { full: 30, small: 5 };
const MAX_STORM_S = 900;
/** A rollout learns that a machine never came back only at its boot timeout (10 min): room for that, and the rollback. */
const MAX_ROLLOUT_S = 1800;

export default async function storm(h: BenchHarness): Promise<BenchRow[]> {
  const started = Date.now();
  const deadlineS = (max = MAX_STORM_S) => {
    // Past h.timeoutMs the runner abandons the benchmark without cleaning up: each storm's own
    // deadline keeps the whole of it inside that, with room to stop livery and delete the namespaces.
    const left = Math.floor((h.timeoutMs - 90_000 - (Date.now() - started)) / 1000) - 60;
    if (left < 30) throw new Error('no time left for another storm within BENCH_TIMEOUT_S');
    return Math.min(max, left);
  };
  const sizesOf = (z: StormSetup['sizes']) => `kernel ${z.kernel / MB} MiB, initrd ${z.initrd / MB} MiB, rootfs ${z.rootfs / MB} MiB per machine`;
  const sizes = sizesOf(MINIMAL_IMAGE);
  // One run per figure: the 1,000-machine storm alone moves 92 GiB through this machine.
  const run = async (rig: StormRig, clients: number, label: string) => {
    const r = await rig.storm({ clients, deadlineS: deadlineS() });
    h.log(`${label}: ${r.totalSeconds} s; ${describeStorm(r)}`);
    return r;
  };
  /** Starts a rig, runs `use` on it, and always stops it. */
  const withRig = async <T>(name: string, setup: StormSetup, use: (rig: StormRig) => Promise<T>): Promise<T> => {
    const rig = await startStormRig(join(h.tmpDir, name), setup);
    try {
      return await use(rig);
    } finally {
      await rig.close();
    }
  };
  const seconds = (name: string, r: StormReport, sizeNote: string, target: number | null) =>
    h.row({
      name,
      unit: 's',
      higherIsBetter: false,
      livery: [r.totalSeconds],
      notes: `${sizeNote}, all powered on at once, http.workers 0${target !== null ? `; target at most ${target} s, the script stage's p99 at most 2 s` : ''}; ${describeStorm(r)}`,
    });
  const rows: BenchRow[] = [];
  await withRig('clean', { machines: 1000, sizes: MINIMAL_IMAGE }, async (rig) => {
    for (const clients of [100, 500, 1000]) {
      const r = await run(rig, clients, `${clients} machines`);
      rows.push(seconds(`boot storm: ${clients} machines, first DISCOVER to last byte`, r, sizes, clients === 1000 ? TARGET_SECONDS.full : null));
    }
    // Last on this rig: the rollout leaves every machine pinned to its second image.
    const r = await rig.rollout({ clients: 1000, waves: '1,10%,50%,100%', deadlineS: deadlineS(MAX_ROLLOUT_S) });
    const waves = r.waves.map((w) => `wave ${w.wave}: ${w.machines} in ${w.seconds} s`).join(', ');
    h.log(`rollout of 1000: ${r.state} in ${r.totalSeconds} s; ${waves}; ${describeStorm(r.report)}`);
    rows.push(
      h.row({
        name: 'rollout: 1000 machines power-cycled by their (simulated) Redfish BMCs, waves 1,10%,50%,100%, soak 0',
        unit: 's',
        higherIsBetter: false,
        livery: [r.totalSeconds],
        notes: `${r.state}; ${waves}; max-parallel ${r.maxParallel} (the default), at most ${r.report.concurrency} booting at once; ${sizes}; ${describeStorm(r.report)}`,
      }),
    );
  });
  await withRig('small', { machines: 1000, sizes: SMALL }, async (rig) => {
    const r = await run(rig, 1000, '1000 machines, 1 MiB artifacts');
    rows.push(seconds('boot storm: 1000 machines with 1 MiB artifacts (the boot path without the bulk bytes)', r, sizesOf(SMALL), TARGET_SECONDS.small));
  });
  await withRig('lossy', { machines: 500, sizes: MINIMAL_IMAGE, lossPercent: 5 }, async (rig) => {
    const r = await run(rig, 500, '500 machines at 5 % loss');
    rows.push(
      h.row({
        name: 'boot storm: machines failed, 500 at 5 % packet loss',
        unit: 'machines',
        higherIsBetter: false,
        livery: [r.failures],
        notes: `${rig.loss}; ${sizes}; took ${r.totalSeconds} s; ${describeStorm(r)}`,
      }),
    );
  });
  return rows;
}
