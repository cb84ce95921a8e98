/**
 * What every boot-storm rig shares, whether one livery answers the rack (bench/storm.ts) or
 * several on one segment (bench/storm-pair-rig.ts): the rack in the CMDB, the image published
 * through the CLI, and the simulator (src/lab/storm) run in the client namespace.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import type { Cmdb } from '../src/cmdb/index.js';
import { stormMac } from '../src/lab/storm/identity.js';
import type { StormReport } from '../src/lab/storm/report.js';
import type { Namespace } from '../src/lab/vm/network.js';
import type { ImageManifest } from '../src/catalog/manifest.js';
import { makeBundle, randomArtifacts } from '../test/helpers/bundle.js';
import { CLI } from '../test/helpers/cli.js';

export const STORM = resolve(import.meta.dirname, '../dist/lab/storm/main.js');
/** The first (or only) livery's address on the rack's /16: its gateway and DNS server too. */
export const SERVER = '10.150.0.1';
// Leases come from the upper half of the /16; the client namespace treats all of it as its own
// (a local route, "AnyIP"), so each virtual machine talks TFTP and HTTP from its leased address.
export const POOL = { cidr: '10.150.128.0/17', start: '10.150.128.1', end: '10.150.255.254' };
/** livery's default BIOS loader: the simulator checks the TFTP transfer against its size. */
export const LOADER = '/usr/lib/ipxe/undionly.kpxe';
const IMAGE = 'storm';
export const MB = 1024 * 1024;
/** Roughly images/minimal as the builder makes it (kernel 8 MiB, initrd 6 MiB, squashfs 64–80 MiB). */
export const MINIMAL_IMAGE = { kernel: 8 * MB, initrd: 6 * MB, rootfs: 80 * MB };

/** A namespace programs run in. */
export type Host = Pick<Namespace, 'exec' | 'spawn'>;

export interface ArtifactSizes {
  kernel: number;
  initrd: number;
  rootfs: number;
}

export interface StormArgs {
  clients: number;
  concurrency?: number;
  deadlineS: number;
  /** The image the machines must end with (default: the one published). */
  expectImageId?: string;
  /** Whole boots each machine tries (the simulator's --boot-attempts; default 1). */
  bootAttempts?: number;
  /** Transmissions of each TFTP packet (the simulator's --tftp-tries; default 6). */
  tftpTries?: number;
  /** Hears each ACK a machine takes, as it happens (the simulator's --log-acks). */
  onAck?(ack: { server: string; ip: string; mac: string }): void;
}

/**
 * The subnet and `machines` machines following storm@stable, written before livery starts (it
 * builds its pools from them), and an admin token for the rig's CLI calls, which it returns.
 */
export function registerRack(cmdb: Cmdb, machines: number): string {
  cmdb.subnets.create({ name: 'rack', cidr: '10.150.0.0/16', gateway: SERVER, dns: [SERVER], pools: [{ start: POOL.start, end: POOL.end }], policy: 'discover' });
  return cmdb.tx(() => {
    for (let i = 0; i < machines; i++) cmdb.machines.create({ macs: [stormMac(i)], hostname: `storm${i}`, image: { name: IMAGE, channel: 'stable' } });
    return cmdb.tokens.create('storm-rig', 'admin').token;
  });
}

/** Publishes a bundle of random artifacts to storm@stable with the CLI, from `host`, to the livery at `url`. */
export async function publishStormImage(host: Host, url: string, token: string, dir: string, sizes: ArtifactSizes): Promise<{ manifest: ImageManifest; imageId: string }> {
  const tarPath = join(dir, 'storm.tar');
  const { tar, manifest } = await makeBundle(IMAGE, '1', randomArtifacts(sizes));
  writeFileSync(tarPath, tar);
  const out = await runIn(host, [CLI, '--url', url, '--token', token, '--json', 'image', 'publish', tarPath, '--channel', 'stable'], 120_000);
  return { manifest, imageId: (JSON.parse(out) as { id: string }).id };
}

/** Runs the simulator in `client` against the liveries at `servers` (their DHCP addresses); resolves with its report. */
export async function runStormIn(client: Host, servers: readonly string[], image: { manifest: ImageManifest; imageId: string }, args: StormArgs): Promise<StormReport> {
  const optional = (flag: string, value: number | undefined) => (value === undefined ? [] : [flag, String(value)]);
  const out = await runIn(
    client,
    [
      STORM,
      ...servers.flatMap((s) => ['--server', s]),
      '--clients', String(args.clients),
      '--image-id', args.expectImageId ?? image.imageId,
      ...image.manifest.artifacts.flatMap((a) => ['--artifact', `${a.name}=${a.size}`]),
      '--loader-path', LOADER,
      '--deadline-s', String(args.deadlineS),
      ...optional('--concurrency', args.concurrency),
      ...optional('--boot-attempts', args.bootAttempts),
      ...optional('--tftp-tries', args.tftpTries),
      ...(args.onAck ? ['--log-acks'] : []),
    ],
    (args.deadlineS + 30) * 1000,
    (line) => {
      const m = /^storm: ack (\S+) (\S+) (\S+)$/.exec(line);
      if (m) args.onAck?.({ server: m[1]!, ip: m[2]!, mac: m[3]! });
    },
  );
  return JSON.parse(out) as StormReport;
}

/**
 * Runs node `args` in `host` without blocking this process (livery's log pipe must keep
 * draining meanwhile); killed after `timeoutMs`. Resolves with stdout, rejects with stderr;
 * `onStderrLine` hears each line of stderr as it comes.
 */
export function runIn(host: Host, args: string[], timeoutMs: number, onStderrLine?: (line: string) => void): Promise<string> {
  const child: ChildProcess = host.spawn(process.execPath, args);
  let out = '';
  let err = '';
  let heard = 0;
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => {
    err += d;
    if (!onStderrLine) return;
    const end = err.lastIndexOf('\n') + 1;
    if (end <= heard) return;
    for (const line of err.slice(heard, end - 1).split('\n')) onStderrLine(line);
    heard = end;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${args[0]} exited ${signal ?? code}:\n${err.slice(-2000)}`));
    });
  });
}

/** A storm's report in one line, for a benchmark's notes. */
export function describeStorm(r: StormReport): string {
  const p99 = Object.entries(r.stages).map(([stage, t]) => `${stage} ${t.p99}`).join(', ');
  const why = [...r.errors, ...r.retries.reasons].slice(0, 3).map((e) => `${e.error} ×${e.count}`).join('; ');
  return (
    `${r.failures} failed, ${r.retries.count} retried; slowest stage at p50/p95/p99/max: ${Object.values(r.slowestStage).join('/')}; ` +
    `p99 s: ${p99}; artifacts ${r.artifacts.mbPerSecond} MB/s; retransmissions dhcp ${r.retransmissions.dhcp} (late replies ${r.dhcpLateReplies}), tftp ${r.retransmissions.tftp}${why ? `; ${why}` : ''}; ` +
    `simulator event-loop delay p99/max ${r.simulatorLoopDelay.p99}/${r.simulatorLoopDelay.max} s; ` +
    // Lock-step DHCP and TFTP suffer most when other work competes for the two cores.
    `load average ${loadavg()[0]!.toFixed(1)} at the end`
  );
}
