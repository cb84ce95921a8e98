import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { formatIpv4, maskOf, parseIpv4 } from '../net/ipv4.js';

/**
 * A network that exists only for throwaway VMs: a network namespace holding a bridge (with the
 * livery address) and one tap per VM. Everything is created inside the namespace and vanishes
 * with it, so the host's own interfaces, addresses and routes are never touched, and livery's
 * DHCP there can answer nothing but these VMs.
 */
export interface PrivateNetwork {
  /** Namespace name: livery-<tag>-<pid>, unique per process so parallel runs never collide. */
  readonly ns: string;
  readonly bridge: string;
  /** livery's address on the bridge, e.g. 10.99.0.1. */
  readonly address: string;
  /** e.g. 10.99.0.0/24. */
  readonly cidr: string;
  /** The address `n` hosts into the network: hostAddress(100) is 10.99.0.100 in 10.99.0.0/24. */
  hostAddress(n: number): string;
  /** Creates a tap device attached to the bridge and returns its name. */
  addTap(): string;
  removeTap(name: string): void;
  /** Starts a command inside the namespace (`ip netns exec` execs it, so the pid is the command's). */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Kills whatever still runs inside, then deletes the namespace. Idempotent, synchronous. */
  remove(): void;
}

export interface NetworkOptions {
  /** Goes into the namespace name: livery-<tag>-<pid>. */
  tag: string;
  /** livery's address on the bridge (default 10.99.0.1) and the network's prefix (default 24). */
  address?: string;
  prefix?: number;
}

const BRIDGE = 'br0';
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });

export function createPrivateNetwork(opts: NetworkOptions): PrivateNetwork {
  const address = opts.address ?? '10.99.0.1';
  const prefix = opts.prefix ?? 24;
  const ip = parseIpv4(address);
  if (ip === null || !(prefix >= 8 && prefix <= 24)) throw new Error(`expected an IPv4 address and a prefix from 8 to 24, got ${address}/${prefix}`);
  const network = (ip & maskOf(prefix)) >>> 0;
  const ns = `livery-${opts.tag}-${process.pid}`;
  const inNs = (args: string[]) => run('ip', ['-n', ns, ...args]);
  let taps = 0;
  const net: PrivateNetwork = {
    ns,
    bridge: BRIDGE,
    address,
    cidr: `${formatIpv4(network)}/${prefix}`,
    hostAddress: (n) => formatIpv4((network + n) >>> 0),
    addTap() {
      const tap = `tap${taps++}`;
      inNs(['tuntap', 'add', tap, 'mode', 'tap']);
      inNs(['link', 'set', tap, 'master', BRIDGE]);
      inNs(['link', 'set', tap, 'up']);
      return tap;
    },
    removeTap(tap) {
      try {
        inNs(['link', 'del', tap]);
      } catch {
        // Already gone (QEMU closed a tap it did not own, or the namespace went first).
      }
    },
    spawn: (cmd, args, o = {}) => spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...o }),
    remove() {
      let pids: string[];
      try {
        pids = run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean);
      } catch {
        return; // No such namespace: never created, or already removed.
      }
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Exited meanwhile.
        }
      }
      run('ip', ['netns', 'del', ns]);
    },
  };
  // A namespace with this name can only be left over from a dead process that had our pid
  // (killed before it could clean up): whatever still runs in it is an orphan of that run.
  net.remove();
  try {
    run('ip', ['netns', 'add', ns]);
    inNs(['link', 'set', 'lo', 'up']);
    inNs(['link', 'add', BRIDGE, 'type', 'bridge']);
    inNs(['addr', 'add', `${address}/${prefix}`, 'dev', BRIDGE]);
    // A bridge without a port that has carrier is not RUNNING, and an interface that is not
    // running shows no addresses to Node (libuv), so livery would refuse to serve DHCP on it
    // before the first VM starts. A veth pair inside the namespace keeps the bridge up.
    inNs(['link', 'add', 'keep0', 'type', 'veth', 'peer', 'name', 'keep1']);
    inNs(['link', 'set', 'keep0', 'master', BRIDGE]);
    for (const dev of ['keep0', 'keep1', BRIDGE]) inNs(['link', 'set', dev, 'up']);
  } catch (err) {
    net.remove();
    throw err;
  }
  return net;
}
