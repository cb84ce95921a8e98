/**
 * The DHCP benchmarks' method (bench/dhcp.ts, bench/dhcp-pg.ts): full DISCOVER-OFFER-REQUEST-ACK
 * exchanges per second, every server driven by Kea's perfdhcp in one pair of private network
 * namespaces.
 *
 * perfdhcp always acts as a relay (giaddr = its own address, replies to giaddr:67), so every
 * server answers the relayed path, from the same /16 pool, for the same 10,000 simulated
 * clients, with the same options (perfdhcp parses all it gets: a server sending fewer gives
 * it less work, and on two cores perfdhcp's CPU is part of the measurement). Each server gets
 * the same search for its peak: short probes at rising offered rates, each from a fresh, empty
 * lease database after the same warm-up. A single probe is noisy (runs at one rate have spanned
 * 2,400-4,900 exchanges/s on this machine), so the best probes only say where to look: then
 * come `h.runs` rounds, each running every server at each best probe's rate and a factor 2^¼
 * either side (within a factor of two of its own best), interleaved so that a change in the machine's
 * load falls on every server alike. A server's figure is the rate whose runs have the best median.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openCmdbAt } from '../../src/cmdb/index.js';
import { resolveConfig } from '../../src/config/index.js';
import { cmdbTarget } from '../../src/daemon/database.js';
import type { ChildProcess } from 'node:child_process';
import { startLiveryIn } from '../../test/helpers/livery-ns.js';
import { createTestNet, hostIn, type TestNet } from '../../test/helpers/netns.js';
import { startPerfdhcp, type PerfdhcpLoad, type PerfdhcpResult, type PerfdhcpRun } from '../../test/helpers/perfdhcp.js';
import type { DhcpBenchNetwork, RunningServer } from './dhcp-refs.js';
import type { BenchHarness } from './harness.js';

const SERVER = '10.99.0.1';
const RELAY = '10.100.0.1';
const CLIENTS = 10_000;
const PROBE_SECONDS = 5;
export const RUN_SECONDS = 10;
/**
 * Every server, fresh for each run, first answers the same short warm-up from other clients
 * (MACs 00:0c:02:00:xx:xx, apart from the measured clients' 00:0c:01:02:xx:xx), so that a
 * just-started process (livery's JIT, caches) is not what gets measured.
 */
const WARMUP = { rate: 200, clients: 1000, seconds: 2, baseMac: '00:0c:02:00:00:00' };
// Offered rates tried: from START_RATE up by FACTOR while the server keeps up, halving when it cannot.
const START_RATE = 400;
const FACTOR = Math.SQRT2;
/** The measured rounds' rates: the best probe's, and this factor below and above it. */
const NEIGHBOUR = 2 ** 0.25;
const MAX_RATE = 20_000;
const MIN_RATE = 10;
/** A server keeps up when it completes at least this share of the exchanges offered. */
const KEEPS_UP = 0.9;

/** Where a benchmark's livery serves HTTP (its /metrics), on its DHCP address. */
export const BENCH_HTTP_PORT = 8080;

/** The subnet every server is given. */
export const BENCH_NETWORK: Omit<DhcpBenchNetwork, 'interface'> = {
  address: SERVER,
  cidr: '10.100.0.0/16',
  netmask: '255.255.0.0',
  router: RELAY,
  poolStart: '10.100.1.0',
  poolEnd: '10.100.255.254',
  poolSize: 65_279,
  leaseSeconds: 3600,
  bootFile: 'undionly.kpxe',
};

export interface DhcpTarget {
  name: string;
  /** Starts the server (or servers) fresh (an empty lease database) with its files under `dir`. */
  start(dir: string): Promise<RunningServer>;
  /** Offers perfdhcp's load to what start() started. */
  perfdhcp: Perfdhcp;
}

/** Starts perfdhcp with a load against one target's network path. */
export type Perfdhcp = (load: PerfdhcpLoad) => PerfdhcpRun;

export interface Measured {
  /** Offered rate → the measured runs at it. */
  byRate: Map<number, PerfdhcpResult[]>;
  /** The offered rate whose runs have the best median, once measured. */
  peak: number;
  runs: PerfdhcpResult[];
}

/**
 * The benchmark's namespaces (perfdhcp's relay reaches the server's /24 through a route), removed
 * by `net.remove()`, and perfdhcp relaying unicast to the server there.
 */
export function createDhcpBenchNet(): { net: TestNet; n: DhcpBenchNetwork; perfdhcp: Perfdhcp } {
  const net = createTestNet({
    serverAddress: `${SERVER}/24`,
    clientAddresses: ['10.99.0.2/24', `${RELAY}/16`],
    routes: [{ ns: 'server', to: '10.100.0.0/16', via: '10.99.0.2' }],
  });
  return { net, n: { ...BENCH_NETWORK, interface: net.serverIf }, perfdhcp: (load) => startPerfdhcp(net, { server: SERVER, relay: RELAY, ...load }) };
}

/** Probes each target's peak, then measures them all in `h.runs` interleaved rounds. */
export async function measureDhcp(h: BenchHarness, targets: DhcpTarget[]): Promise<Map<string, Measured>> {
  const probed = new Map<string, number>();
  for (const t of targets) probed.set(t.name, await findPeak(h, t));
  // Every server runs at every rate near anyone's best probe, so that two servers are also
  // compared at the same offered loads. Rates under half its own best probe would only show
  // it keeping up, and rates past twice it how it drowns.
  const near = [...probed.values()].flatMap((p) => [p / NEIGHBOUR, p, p * NEIGHBOUR]).map(Math.round);
  const results = new Map<string, Measured>();
  for (const t of targets) {
    const own = probed.get(t.name)!;
    const rates = [...new Set(near)].filter((r) => own / 2 <= r && r <= 2 * own).sort((a, b) => a - b);
    results.set(t.name, { byRate: new Map(rates.map((r) => [r, []])), peak: own, runs: [] });
  }
  for (let round = 0; round < h.runs; round++) {
    for (const t of targets) {
      for (const [rate, runs] of results.get(t.name)!.byRate) runs.push(await perfdhcpRun(h, t, rate, RUN_SECONDS));
    }
  }
  for (const [name, m] of results) {
    for (const [rate, runs] of m.byRate) {
      const achieved = median(h, runs.map((r) => r.exchangesPerSecond));
      h.log(`${name}: at an offered ${rate}/s: ${achieved.toFixed(0)} exchanges/s (median of ${runs.length}: ${runs.map((r) => r.exchangesPerSecond.toFixed(0)).join(', ')})`);
      if (m.runs.length === 0 || achieved > median(h, m.runs.map((r) => r.exchangesPerSecond))) {
        m.peak = rate;
        m.runs = runs;
      }
    }
    const drops = median(h, m.runs.map((r) => r.discoverDropPercent));
    h.log(`${name}: peak at an offered ${m.peak}/s, ${drops.toFixed(1)}% of DISCOVERs unanswered there`);
  }
  return results;
}

/** How the figures were measured, for a row's notes. */
export function methodNote(h: BenchHarness, n: DhcpBenchNetwork): string {
  return `perfdhcp -4 -r <rate> -R ${CLIENTS} -p ${RUN_SECONDS} -l <relay>, relayed, /16 pool, the same reply options from every server (mask, router, broadcast, T1/T2, next-server and ${n.bootFile} in siaddr/file and options 66/67), fresh lease database and a ${WARMUP.seconds} s warm-up per run; every server at every best probe's rate and 2^±¼ of it (within 2× of its own best probe), ${h.runs} interleaved rounds, figure = the rate with the best median`;
}

/** A server's peak and its figure at every rate it ran, for a row's notes. */
export function curveNote(h: BenchHarness, name: string, m: Measured): string {
  const curve = [...m.byRate].map(([rate, runs]) => `${rate}→${median(h, runs.map((r) => r.exchangesPerSecond)).toFixed(0)}`).join(', ');
  return `${name} peak at -r ${Math.round(m.peak)}; ${name} by offered rate: ${curve}`;
}

/** The CMDB a benchmark's livery keeps: SQLite in its data dir, or a PostgreSQL database. */
export type BenchDatabase = { url?: string; passwordFile?: string };

/** The real `livery serve` with a fresh CMDB (SQLite in its data dir, or the given PostgreSQL database) holding the benchmark subnet. */
export async function startLivery(net: TestNet, dir: string, n: DhcpBenchNetwork, database: BenchDatabase = {}): Promise<RunningServer> {
  const dataDir = join(dir, 'var');
  createBenchSubnet(dataDir, n, database);
  return startLiveryNode(hostIn(net, net.server), dir, dataDir, n, database);
}

/** The benchmark subnet (discovery policy, its pool) in a fresh CMDB. */
export function createBenchSubnet(dataDir: string, n: DhcpBenchNetwork, database: BenchDatabase): void {
  const cmdb = openCmdbAt(cmdbTarget(resolveConfig({ dataDir, database })));
  try {
    cmdb.subnets.create({ name: 'bench', cidr: n.cidr, gateway: n.router, pools: [{ start: n.poolStart, end: n.poolEnd }], policy: 'discover', leaseSeconds: n.leaseSeconds });
  } finally {
    cmdb.close();
  }
}

/**
 * `livery serve` on `host` with its config in `dir`, answering DHCP on n.interface as n.address;
 * `node` names it and the other nodes sharing its segment and database (dhcp.peers).
 */
export async function startLiveryNode(
  host: { spawn(cmd: string, args: string[]): ChildProcess },
  dir: string,
  dataDir: string,
  n: DhcpBenchNetwork,
  database: BenchDatabase,
  node?: { name: string; peers: string[] },
): Promise<RunningServer> {
  const livery = await startLiveryIn(host, dir, {
    dataDir,
    database,
    ...(node ? { node: { name: node.name } } : {}),
    http: { listen: `${n.address}:${BENCH_HTTP_PORT}`, workers: 1 },
    tftp: { enabled: false },
    dhcp: { enabled: true, interface: n.interface, address: n.address, ...(node ? { peers: node.peers } : {}) },
    // Every perfdhcp client is a new MAC, registered as it would be in a rack's first boot:
    // the default bound on records per subnet per minute would leave most of that work out.
    discovery: { maxPerSubnet: 1_000_000 },
  });
  return { stop: () => livery.stop() };
}

/** The offered rate at which the server completed the most exchanges in one short probe. */
async function findPeak(h: BenchHarness, t: DhcpTarget): Promise<number> {
  const tried = new Map<number, number>();
  const probe = async (rate: number) => {
    const r = await perfdhcpRun(h, t, rate, PROBE_SECONDS);
    tried.set(rate, r.exchangesPerSecond);
    h.log(`${t.name}: probe at ${rate.toFixed(0)}/s offered: ${r.exchangesPerSecond.toFixed(0)} exchanges/s, ${r.discoverDropPercent.toFixed(1)}% DISCOVERs unanswered`);
    return r.exchangesPerSecond >= KEEPS_UP * rate;
  };
  let rate = START_RATE;
  if (await probe(rate)) {
    // Climb past the first rate it cannot keep up with: its peak may lie just above it.
    let misses = 0;
    while (misses < 2 && rate * FACTOR <= MAX_RATE) {
      rate *= FACTOR;
      if (!(await probe(rate))) misses++;
    }
  } else {
    // Halve until it keeps up (or the rate is too low to say anything).
    while (rate / 2 >= MIN_RATE && !(await probe(rate / 2))) rate /= 2;
  }
  return [...tried].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
}

/**
 * One perfdhcp run at `rate` against a freshly started server with no leases; `during` is
 * started after the warm-up and stopped after the run, its result returned with perfdhcp's.
 */
export async function perfdhcpRun<T = undefined>(
  h: BenchHarness,
  t: DhcpTarget,
  rate: number,
  seconds: number,
  opts: { exitWaitSeconds?: number; during?: (dir: string) => Promise<() => Promise<T>> } = {},
): Promise<PerfdhcpResult & { during?: T }> {
  const dir = mkdtempSync(join(h.tmpDir, 'server-'));
  try {
    const server = await t.start(dir);
    try {
      await t.perfdhcp(WARMUP).result;
      const stopDuring = await opts.during?.(dir);
      const result = await t.perfdhcp({ rate: Math.round(rate), clients: CLIENTS, seconds, exitWaitSeconds: opts.exitWaitSeconds }).result;
      return { ...result, during: await stopDuring?.() };
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const median = (h: BenchHarness, values: number[]) => h.median(values).median;
