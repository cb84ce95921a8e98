import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { formatIpv4, maskOf, parseIpv4 } from '../../net/ipv4.js';

/**
 * A network that exists only for throwaway VMs: a network namespace holding a bridge (with the
 * livery address) and one tap per VM. Everything is created inside the namespace and vanishes
 * with it, so the host's own interfaces, addresses and routes are never touched, and livery's
 * DHCP there can answer nothing but these VMs.
 */
export interface PrivateNetwork extends Namespace {
  readonly bridge: string;
  /** The bridge's address, e.g. 10.99.0.1: livery's, or the router's on a segment behind a relay. */
  readonly address: string;
  /** e.g. 10.99.0.0/24. */
  readonly cidr: string;
  /** The address `n` hosts into the network: hostAddress(100) is 10.99.0.100 in 10.99.0.0/24. */
  hostAddress(n: number): string;
  /** Creates a tap device attached to the bridge and returns its name. */
  addTap(): string;
  removeTap(name: string): void;
  /**
   * Plugs another namespace `host` into the bridge with a veth pair: the end
   * inside `host` is named `ifname` and gets `cidr` (e.g. 10.99.0.2/24) when given.
   */
  plug(host: Namespace, ifname: string, cidr?: string): void;
}

/** A network namespace: a private network's, or one more host on it (another DHCP server, a relay, a client). */
export interface Namespace {
  /** Namespace name: livery-<tag>-<pid>, unique per process so parallel runs never collide. */
  readonly ns: string;
  /** Runs a command inside and returns its output (throws on failure). */
  exec(cmd: string, args: string[]): string;
  /** Starts a command inside the namespace (`ip netns exec` execs it, so the pid is the command's). */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Kills whatever still runs inside, then deletes the namespace. Idempotent, synchronous. */
  remove(): void;
}

export interface NetworkOptions {
  /** Goes into the namespace name: livery-<tag>-<pid>. */
  tag: string;
  /** The bridge's address (default 10.99.0.1) and the network's prefix (default 24). */
  address?: string;
  prefix?: number;
}

const BRIDGE = 'br0';
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });

/** Kills whatever runs in namespace `ns` and deletes it; nothing happens when there is none. */
function removeNamespace(ns: string): void {
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
}

/**
 * A fresh namespace named livery-<tag>-<pid> with only loopback up. A namespace with that name
 * can only be left over from a dead process that had our pid: it is removed first.
 */
export function createNamespace(tag: string): Namespace {
  const ns = `livery-${tag}-${process.pid}`;
  removeNamespace(ns);
  run('ip', ['netns', 'add', ns]);
  const host: Namespace = {
    ns,
    exec: (cmd, args) => run('ip', ['netns', 'exec', ns, cmd, ...args]),
    spawn: (cmd, args, o = {}) => spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...o }),
    remove: () => removeNamespace(ns),
  };
  try {
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    host.remove();
    throw err;
  }
  return host;
}

export function createPrivateNetwork(opts: NetworkOptions): PrivateNetwork {
  const address = opts.address ?? '10.99.0.1';
  const prefix = opts.prefix ?? 24;
  const ip = parseIpv4(address);
  if (ip === null || !(prefix >= 8 && prefix <= 24)) throw new Error(`expected an IPv4 address and a prefix from 8 to 24, got ${address}/${prefix}`);
  const network = (ip & maskOf(prefix)) >>> 0;
  const host = createNamespace(opts.tag);
  const ns = host.ns;
  const inNs = (args: string[]) => run('ip', ['-n', ns, ...args]);
  let taps = 0;
  let plugs = 0;
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
    exec: host.exec,
    spawn: host.spawn,
    plug(other, ifname, cidr) {
      const port = `${ifname}p${plugs++}`.slice(0, 15);
      // Created straight inside the two namespaces: the host's own link table is never touched.
      inNs(['link', 'add', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', other.ns]);
      inNs(['link', 'set', port, 'master', BRIDGE]);
      inNs(['link', 'set', port, 'up']);
      if (cidr) run('ip', ['-n', other.ns, 'addr', 'add', cidr, 'dev', ifname]);
      run('ip', ['-n', other.ns, 'link', 'set', ifname, 'up']);
    },
    remove: host.remove,
  };
  try {
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
