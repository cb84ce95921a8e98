import { execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import type { Namespace, PrivateNetwork } from './network.js';

const execFileAsync = promisify(execFile);

export interface LabLiveryOptions {
  net: PrivateNetwork;
  /** A fresh data dir (database, catalog); the config file is written into it too. */
  dataDir: string;
  /** The livery CLI to run (dist/cli/main.js). */
  cli: string;
  /** What the subnet does with MACs nobody registered (default discover). */
  policy?: 'discover' | 'ignore';
  /** Default full; proxy answers PXE clients beside another DHCP server that gives the addresses. */
  dhcpMode?: 'full' | 'proxy';
  /** Addresses relays send from besides their giaddr (dhcp.relaySources); dhcrelay sends from its upstream interface. */
  relaySources?: string[];
  /**
   * Where it runs when not in the network's own namespace on its bridge: another host plugged
   * into the segment (a second node), with its interface and address there.
   */
  host?: { ns: Namespace; interface: string; address: string };
  /** One node of several sharing a PostgreSQL CMDB (README "Running more than one node"); the first one creates the lab's subnet. */
  cluster?: { node: string; peers: string[]; database: { url: string; passwordFile: string } };
  /**
   * Starts on a CMDB a livery already set up (a restart, or a second node): the lab's subnet is
   * there, and the admin token is this one, or the one in the data dir.
   */
  rejoin?: { adminToken?: string };
}

/** A throwaway `livery serve` inside a private network, serving DHCP (full or proxy) on its bridge only. */
export interface LabLivery {
  readonly url: string;
  /** Its admin token (a second node sharing the CMDB is given it). */
  readonly token: string;
  /** Runs `livery --json <args>` against this server from inside the namespace; the parsed output. */
  cli<T = unknown>(args: string[]): Promise<T>;
  /** Everything the server logged. */
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** SIGKILL at once: a node that dies. */
  kill(): Promise<void>;
}

const HTTP_PORT = 8080;

export async function startLabLivery(opts: LabLiveryOptions): Promise<LabLivery> {
  const { net, cluster } = opts;
  const host = opts.host ?? { ns: net, interface: net.bridge, address: net.address };
  mkdirSync(opts.dataDir, { recursive: true });
  const configFile = join(opts.dataDir, 'livery.yaml');
  writeFileSync(
    configFile,
    stringify({
      dataDir: opts.dataDir,
      log: { level: 'info' },
      http: { listen: `${host.address}:${HTTP_PORT}` },
      tftp: { listen: `${host.address}:69` },
      dhcp: { enabled: true, mode: opts.dhcpMode ?? 'full', interface: host.interface, address: host.address, relaySources: opts.relaySources ?? [], peers: cluster?.peers ?? [] },
      // A dead peer is noticed within seconds: a lab's boots are short.
      ...(cluster && { database: cluster.database, node: { name: cluster.node, heartbeatSeconds: 1, deadAfterSeconds: 3 } }),
    }),
  );
  // Its own process group: a Ctrl-C meant for `livery vm boot` must not stop the server before
  // the VM; it is stopped in order, by pid.
  const proc = host.ns.spawn(process.execPath, [opts.cli, 'serve', '--config', configFile], { detached: true });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const stop = () => stopProcess(proc);
  const kill = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  try {
    await waitForOutput(proc, () => output, 'dhcp listening', 30_000);
    const url = `http://${host.address}:${HTTP_PORT}`;
    const token = opts.rejoin?.adminToken ?? readFileSync(join(opts.dataDir, 'admin.token'), 'utf8').trim();
    const cli = async <T>(args: string[]): Promise<T> => {
      const argv = ['netns', 'exec', host.ns.ns, process.execPath, opts.cli, '--json', ...args];
      // The token goes in the environment, not on a command line every `ps` shows.
      const env = { ...process.env, LIVERY_URL: url, LIVERY_TOKEN: token };
      try {
        const { stdout } = await execFileAsync('ip', argv, { env, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
        return JSON.parse(stdout) as T;
      } catch (err) {
        // With --json a command that fails for some targets (power, rollout) says why on stdout.
        const e = err as { stderr?: string; stdout?: string; message: string };
        throw new Error(`livery ${args.join(' ')}: ${e.stderr?.trim() || e.stdout?.trim() || e.message}`);
      }
    };
    if (!opts.rejoin) {
      await cli([
        'subnet', 'add', '--name', 'lab', '--cidr', net.cidr, '--gateway', net.address,
        '--pool', `${net.hostAddress(100)}-${net.hostAddress(199)}`, '--policy', opts.policy ?? 'discover',
      ]);
    }
    return { url, token, cli, output: () => output, stop, kill };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves once `output()` (what `proc` has printed) contains `text`; `name` is for the errors. */
export async function waitForOutput(proc: ChildProcess, output: () => string, text: string, timeoutMs: number, name = 'livery serve'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!output().includes(text)) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}):\n${output()}`);
    if (Date.now() > deadline) throw new Error(`${name} did not print "${text}" within ${timeoutMs / 1000} s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited. */
export async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const killLater = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killLater);
}
