/**
 * The reference DHCP servers for bench/dhcp.ts, ISC Kea and dnsmasq, each started inside the
 * benchmark's server namespace with every file it writes (config, leases, control socket,
 * pid and lock files) under the benchmark's scratch folder, never the system paths.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIpv4, parseCidr } from '../../src/net/ipv4.js';
import type { TestNet } from '../../test/helpers/netns.js';

/** What every server under test is given: the same relayed subnet and pool. */
export interface DhcpBenchNetwork {
  /** The server's veth in the server namespace, and its address on it. */
  interface: string;
  address: string;
  /** The relayed subnet (perfdhcp's giaddr is inside it) and its dynamic pool. */
  cidr: string;
  netmask: string;
  router: string;
  poolStart: string;
  poolEnd: string;
  poolSize: number;
  leaseSeconds: number;
  /**
   * What every server tells a BIOS PXE client, as livery does by default: next-server and the
   * loader in siaddr/file and options 66/67, with T1/T2 (options 58/59). The same reply
   * content means the same work for perfdhcp, which parses every option it gets.
   */
  bootFile: string;
}

/** T1 and T2 as livery sets them (RFC 2131 §4.4.5 defaults): half and seven eighths of the lease. */
const renewal = (n: DhcpBenchNetwork) => Math.floor(n.leaseSeconds / 2);
const rebinding = (n: DhcpBenchNetwork) => Math.floor((n.leaseSeconds * 7) / 8);

export interface RunningServer {
  stop(): Promise<void>;
}

/** How Kea is run: where its leases go, and whether it answers on a pool of threads. */
export interface KeaSetup {
  /** Kea's "lease-database" map; by default memfile persisted to a CSV file with lease file cleanup (LFC) off. */
  leaseDatabase?: Record<string, unknown>;
  /** Packet-processing threads (Kea's multi-threading, its queue at its default size); absent: single-threaded, Kea 2.2's default. */
  threads?: number;
}

/** Kea's DHCPv4 server, set up as `setup` says. */
export async function startKea(net: TestNet, dir: string, n: DhcpBenchNetwork, setup: KeaSetup = {}): Promise<RunningServer> {
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'kea-dhcp4.json');
  // Mode 0600: a lease database's password is in it.
  writeFileSync(
    config,
    JSON.stringify({
      Dhcp4: {
        // UDP sockets: relayed traffic arrives unicast, no raw socket needed.
        'interfaces-config': { interfaces: [n.interface], 'dhcp-socket-type': 'udp' },
        'lease-database': setup.leaseDatabase ?? { type: 'memfile', persist: true, name: join(dir, 'kea-leases4.csv'), 'lfc-interval': 0 },
        ...(setup.threads
          ? { 'multi-threading': { 'enable-multi-threading': true, 'thread-pool-size': setup.threads } }
          : {}),
        'control-socket': { 'socket-type': 'unix', 'socket-name': join(dir, 'kea4-ctrl.sock') },
        'valid-lifetime': n.leaseSeconds,
        'renew-timer': renewal(n),
        'rebind-timer': rebinding(n),
        subnet4: [
          {
            id: 1,
            subnet: n.cidr,
            pools: [{ pool: `${n.poolStart} - ${n.poolEnd}` }],
            'next-server': n.address,
            'boot-file-name': n.bootFile,
            'option-data': [
              { name: 'routers', data: n.router },
              { name: 'broadcast-address', data: broadcastOf(n) },
              { name: 'tftp-server-name', data: n.address },
              { name: 'boot-file-name', data: n.bootFile },
            ],
          },
        ],
        loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stderr' }], severity: 'WARN' }],
      },
    }),
    { mode: 0o600 },
  );
  return startDaemon(net, 'kea-dhcp4', ['-c', config], { KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir });
}

/**
 * dnsmasq as a DHCP-only server (DNS off with --port=0). By default it pings every address
 * before offering it to a new client; `ping: false` adds --no-ping.
 */
export async function startDnsmasq(net: TestNet, dir: string, n: DhcpBenchNetwork, opts: { ping: boolean }): Promise<RunningServer> {
  mkdirSync(dir, { recursive: true });
  const args = [
    '-d',
    '--conf-file=/dev/null',
    '--port=0',
    `--dhcp-range=${n.poolStart},${n.poolEnd},${n.netmask},${n.leaseSeconds}`,
    // Its default cap is 1,000 leases: allow the whole pool, as Kea and livery do.
    `--dhcp-lease-max=${n.poolSize}`,
    `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    `--interface=${n.interface}`,
    '--bind-interfaces',
    // One log line per packet otherwise; Kea and livery log warnings only.
    '--quiet-dhcp',
    `--dhcp-option=option:router,${n.router}`,
    `--dhcp-option=option:T1,${renewal(n)}`,
    `--dhcp-option=option:T2,${rebinding(n)}`,
    `--dhcp-option=66,${n.address}`,
    `--dhcp-boot=${n.bootFile},,${n.address}`,
    ...(opts.ping ? [] : ['--no-ping']),
  ];
  return startDaemon(net, 'dnsmasq', args, {});
}

/** The subnet's broadcast address (option 28), which livery sends from the subnet's block. */
function broadcastOf(n: DhcpBenchNetwork): string {
  const cidr = parseCidr(n.cidr)!;
  return formatIpv4(cidr.last);
}

/** Starts a server in the server namespace and waits until something listens on UDP 67 there. */
async function startDaemon(net: TestNet, cmd: string, args: string[], env: Record<string, string>): Promise<RunningServer> {
  const proc: ChildProcess = net.spawn(net.server, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const ended = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await ended;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 15_000;
  while (!net.exec(net.server, 'ss', ['-Hlun', 'sport = :67']).trim()) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${cmd} did not start listening on UDP 67:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { stop };
}
