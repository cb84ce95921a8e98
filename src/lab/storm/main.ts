/**
 * The boot-storm simulator as a command, run inside the storm's client network namespace:
 *
 *   node dist/lab/storm/main.js --server 10.77.0.1 [--server 10.77.0.2] --clients 1000 --image-id <id> \
 *     --artifact vmlinuz=8388608 --artifact initrd.img=31457280 --artifact rootfs.squashfs=104857600
 *
 * With --bmc-listen it is a rollout's fleet instead: the machines' BMCs (one Redfish service,
 * system i for machine i) listen there, and each machine boots when livery's rollout
 * power-cycles it; the run ends at SIGTERM (the rollout is over) or at the deadline.
 *
 * Prints one JSON StormReport on stdout and exits 0 whether or not machines failed (the report
 * says which and why); bad arguments exit non-zero with commander's message.
 */
import { Command, InvalidArgumentError } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { backoff } from './backoff.js';
import type { SeenAck } from './machine.js';
import { runRolloutStorm } from './rollout.js';
import { runStorm } from './run.js';

const integer = (min: number) => (text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
  return n;
};

const artifact = (text: string, all: Record<string, number>) => {
  const m = /^([^=]+)=(\d+)$/.exec(text);
  if (!m) throw new InvalidArgumentError('expected NAME=BYTES');
  return { ...all, [m[1]!]: Number(m[2]) };
};

const program = new Command('livery-storm')
  .description('boot N virtual BIOS PXE machines at once against livery and report per-stage timings')
  .requiredOption('--server <ip>', "livery's DHCP address (server identifier); repeat for each node answering on the segment", (ip: string, all: string[] = []) => [...all, ip])
  .requiredOption('--image-id <id>', 'the image every machine must end with')
  .requiredOption('--artifact <name=bytes>', 'an artifact of that image and its size (repeat for each)', artifact, {})
  .option('--clients <n>', 'machines', integer(1), 100)
  .option('--concurrency <n>', 'machines booting at once (default: all)', integer(1))
  .option('--loader <file>', 'the loader the PXE OFFER must name', 'undionly.kpxe')
  .option('--loader-path <path>', 'that loader on disk, for its size', '/usr/lib/ipxe/undionly.kpxe')
  .option('--tftp-port <n>', 'TFTP port on siaddr', integer(1), 69)
  .option('--dhcp-wait-ms <ms>', 'first DHCP retransmission wait; doubles each try', integer(1), 4000)
  .option('--dhcp-tries <n>', 'transmissions of each DHCP message', integer(1), 4)
  .option('--tftp-wait-ms <ms>', 'first TFTP retransmission wait; doubles each try', integer(1), 1000)
  .option('--tftp-tries <n>', 'transmissions of each TFTP packet', integer(1), 6)
  // iPXE is patient with a silent server; a short limit would turn a slow boot into a failed one.
  .option('--boot-attempts <n>', 'whole boots a machine tries, each from DHCP again, before it counts as failed', integer(1), 1)
  .option('--log-acks', 'print "storm: ack SERVER IP MAC" on stderr as each machine takes an ACK')
  .option('--http-idle-ms <ms>', 'an HTTP request fails after this long without data', integer(1), 120_000)
  .option('--deadline-s <s>', 'hard bound on the whole storm', integer(1), 600)
  .option('--bmc-listen <address:port>', "rollout mode: the machines' BMCs (Redfish over HTTPS) listen here")
  .option('--bmc-cert <file>', 'rollout mode: their certificate (PEM)')
  .option('--bmc-key <file>', 'rollout mode: its key (PEM)')
  .option('--bmc-user <name>', 'rollout mode: the BMC user', 'storm')
  .option('--bmc-password-file <file>', 'rollout mode: file holding the BMC password')
  .parse();

const o = program.opts<{
  server: string[];
  imageId: string;
  artifact: Record<string, number>;
  clients: number;
  concurrency?: number;
  loader: string;
  loaderPath: string;
  tftpPort: number;
  dhcpWaitMs: number;
  dhcpTries: number;
  tftpWaitMs: number;
  tftpTries: number;
  bootAttempts: number;
  logAcks?: boolean;
  httpIdleMs: number;
  deadlineS: number;
  bmcListen?: string;
  bmcCert?: string;
  bmcKey?: string;
  bmcUser: string;
  bmcPasswordFile?: string;
}>();

const common = {
  servers: o.server,
  clients: o.clients,
  dhcpClientPort: 68,
  dhcpServerPort: 67,
  tftpPort: o.tftpPort,
  expected: { imageId: o.imageId, artifacts: o.artifact, loader: { file: o.loader, bytes: statSync(o.loaderPath).size } },
  // A machine that fails a stage tries that stage again (a PXE ROM would reboot and try again).
  dhcp: { waitsMs: backoff(o.dhcpWaitMs, o.dhcpTries), jitterMs: Math.min(1000, o.dhcpWaitMs / 4), restarts: 1 },
  tftp: { blksize: 1468, waitsMs: backoff(o.tftpWaitMs, o.tftpTries), retryWaitsMs: backoff(2000, 2) },
  http: { idleMs: o.httpIdleMs, retryWaitsMs: backoff(2000, 2) },
  bootAttempts: o.bootAttempts,
  ...(o.logAcks ? { onAck: (mac: string, ack: SeenAck) => process.stderr.write(`storm: ack ${ack.server} ${ack.ip} ${mac}\n`) } : {}),
  deadlineMs: o.deadlineS * 1000,
};

/** The rollout mode's BMC settings from the options, or null for a plain storm. */
function rolloutBmc() {
  if (!o.bmcListen) return null;
  const m = /^(.+):(\d+)$/.exec(o.bmcListen);
  const { bmcCert: cert, bmcKey: key, bmcPasswordFile: passwordFile } = o;
  if (!m || !cert || !key || !passwordFile) throw new InvalidArgumentError('--bmc-listen takes ADDRESS:PORT and needs --bmc-cert, --bmc-key and --bmc-password-file');
  return { address: m[1]!, port: Number(m[2]), cert: readFileSync(cert), key: readFileSync(key), username: o.bmcUser, password: readFileSync(passwordFile, 'utf8').split('\n')[0]! };
}

const bmc = rolloutBmc();
// In rollout mode SIGTERM means the rollout is over: report the boots so far.
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());
const report = bmc ? await runRolloutStorm({ ...common, bmc, stop: stop.signal }) : await runStorm({ ...common, concurrency: o.concurrency ?? o.clients });
process.stdout.write(JSON.stringify(report) + '\n');
