/**
 * The storm simulator's rollout mode on the storm rig: the rig's machines get labels and a BMC
 * each (the simulator's Redfish service, system i for machine i, its certificate pinned),
 * livery gets a second image, and `livery rollout start` takes it to `clients` machines in
 * waves. Livery's rollout engine power-cycles each machine through its Redfish driver; the
 * simulator boots the machine it was asked to (DHCP, TFTP, script, artifacts, phone-home).
 * Figures: seconds per wave and in all, from livery's own record of the rollout.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stormMac } from '../src/lab/storm/identity.js';
import type { StormReport } from '../src/lab/storm/report.js';
import { makeBundle, randomArtifacts } from '../test/helpers/bundle.js';
import type { TestNet } from '../test/helpers/netns.js';

/** The BMC service's address: local in the client namespace, outside the lease pool. */
const BMC_ADDRESS = '10.150.1.1';
const BMC_PORT = 8443;

export interface RolloutStormArgs {
  clients: number;
  /** e.g. 1,10%,50%,100% */
  waves: string;
  deadlineS: number;
  maxParallel?: number;
  /** --boot-timeout of the rollout (default livery's, 10m). */
  bootTimeout?: string;
  /** Machines whose BMC rows carry a wrong password: their power cycles fail (a way to make a wave fail). */
  wrongPasswordFor?: number[];
  /** The version of the image rolled out (default 2; another rollout on the same rig needs another). */
  version?: string;
}

export interface RolloutStormResult {
  /** The simulator's report on the boots the rollout caused. */
  report: StormReport;
  state: string;
  /** Seconds from the rollout's creation to its end. */
  totalSeconds: number;
  waves: { wave: number; machines: number; state: string; seconds: number }[];
  maxParallel: number;
  /** What the simulator wrote on stderr: each BMC reset and each boot that failed. */
  simulatorLog: string;
}

export interface RolloutRigContext {
  net: TestNet;
  dir: string;
  sizes: { kernel: number; initrd: number; rootfs: number };
  /** `livery --json ARGS` in the server namespace; the parsed output. */
  cli<T>(args: string[]): Promise<T>;
  /** Starts the simulator in the client namespace with these arguments (the rig adds server, loader, deadline). */
  simulate(args: string[], deadlineS: number, ready: string): Promise<{ report: Promise<StormReport>; log(): string; stop(): void }>;
}

interface ShownRollout {
  id: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  maxParallel: number;
  waves: { wave: number; state: string; startedAt: string | null; finishedAt: string | null; machines: unknown[] }[];
}

export async function rolloutStorm(ctx: RolloutRigContext, args: RolloutStormArgs): Promise<RolloutStormResult> {
  const key = join(ctx.dir, 'bmc.key');
  const cert = join(ctx.dir, 'bmc.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=storm-bmc'], { stdio: 'ignore' });
  const fingerprint = new X509Certificate(readFileSync(cert)).fingerprint256.replaceAll(':', '').toLowerCase();
  const passwordFile = join(ctx.dir, 'bmc.pw');
  const password = 'storm-bmc-secret';
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  // replace, not add: a second rollout on the same rig finds the address there.
  ctx.net.exec(ctx.net.client, 'ip', ['addr', 'replace', `${BMC_ADDRESS}/32`, 'dev', 'lo']);

  // Labels and BMCs for the rollout's machines, in one import: machine 0 is the canary, the rest in 40 racks.
  const rows = Array.from({ length: args.clients }, (_, i) =>
    [stormMac(i), `storm${i}`, 'storm', i === 0 ? 'true' : '', `r${i % 40}`, `redfish://storm@${BMC_ADDRESS}:${BMC_PORT}/redfish/v1/Systems/${i}`,
      args.wrongPasswordFor?.includes(i) ? `not-${password}` : password, fingerprint].join(','),
  );
  const csv = join(ctx.dir, 'bmcs.csv');
  writeFileSync(csv, ['mac,hostname,label.fleet,label.canary,label.rack,bmc,bmc_password,bmc_fingerprint', ...rows].join('\n') + '\n');
  await ctx.cli(['machine', 'import', csv]);

  const version = args.version ?? '2';
  const tarPath = join(ctx.dir, `storm-${version}.tar`);
  const { tar, manifest } = await makeBundle('storm', version, randomArtifacts(ctx.sizes));
  writeFileSync(tarPath, tar);
  const image = await ctx.cli<{ id: string }>(['image', 'publish', tarPath]);

  const sim = await ctx.simulate(
    ['--clients', String(args.clients), '--image-id', image.id, ...manifest.artifacts.flatMap((a) => ['--artifact', `${a.name}=${a.size}`]),
      '--bmc-listen', `${BMC_ADDRESS}:${BMC_PORT}`, '--bmc-cert', cert, '--bmc-key', key, '--bmc-password-file', passwordFile],
    args.deadlineS,
    'BMCs listening',
  );
  const started = await ctx.cli<ShownRollout>(['rollout', 'start', image.id, '--selector', 'fleet=storm', '--waves', args.waves, '--soak', '0s',
    ...(args.maxParallel ? ['--max-parallel', String(args.maxParallel)] : []), ...(args.bootTimeout ? ['--boot-timeout', args.bootTimeout] : [])]);
  // The rollout decides when the run is over: once it has ended (every machine healthy, or a
  // wave halted and rolled back), the simulator reports the boots it saw.
  const deadline = Date.now() + args.deadlineS * 1000;
  let shown = started;
  while (!['succeeded', 'failed', 'rolled-back', 'aborted'].includes(shown.state) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 3000));
    shown = await ctx.cli<ShownRollout>(['rollout', 'show', started.id]);
  }
  sim.stop();
  const report = await sim.report;
  const span = (from: string | null, to: string | null) => (from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : NaN);
  return {
    report,
    state: shown.state,
    totalSeconds: span(shown.createdAt, shown.updatedAt),
    waves: shown.waves.map((w) => ({ wave: w.wave + 1, machines: w.machines.length, state: w.state, seconds: span(w.startedAt, w.finishedAt) })),
    maxParallel: shown.maxParallel,
    simulatorLog: sim.log(),
  };
}
