import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCmdb, type SqliteCmdb } from '../../src/cmdb/sqlite.js';
import { databasePath } from '../../src/daemon/paths.js';
import { startLiveryInNs, type NsLivery } from './livery-ns.js';
import { createTestNet, type TestNet } from './netns.js';
import { apiClient, type TestServer } from './server.js';

const FORWARDER = join(import.meta.dirname, 'socket-forward.mjs');
const HTTP_PORT = 8080;

/**
 * `livery serve` (the built one) in the server namespace of a private test network, serving
 * DHCP, TFTP and HTTP on its link, and reachable from the test process at a loopback URL
 * through a UNIX socket (the host's network gains nothing). For tests whose machines boot
 * through every door while the test process (a browser, the API) looks on.
 */
export interface NsTestServer extends Pick<TestServer, 'url' | 'token' | 'api' | 'dataDir'> {
  net: TestNet;
  /** livery's address on the link; its HTTP port is 8080, TFTP 69, DHCP 67. */
  address: string;
  /** A connection of the test's own to the CMDB, for checks (livery writes, the test reads). */
  cmdb: SqliteCmdb;
  /** Lets programs in the server namespace reach `socketPath` (a server of the test process) at address:port. */
  expose(socketPath: string, port: number): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

/** Starts the forwarder (node socket-forward.mjs) through `run`, resolving with where it listens. */
async function forward(run: (cmd: string, args: string[]) => ChildProcess, listen: string, target: string, procs: ChildProcess[]): Promise<string> {
  const proc = run(process.execPath, [FORWARDER, listen, target]);
  procs.push(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = /listening on (\S+)/.exec(out);
    if (m) return m[1]!;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`forwarder ${listen} -> ${target} did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `prepare` writes into the CMDB before livery starts (subnets: the DHCP server builds its
 * pools from them); `config` is merged over the doors' settings.
 */
export async function startNsTestServer(
  dir: string,
  opts: { serverCidr: string; prepare?: (cmdb: SqliteCmdb) => void; config?: Record<string, unknown> },
): Promise<NsTestServer> {
  const address = opts.serverCidr.split('/')[0]!;
  const net = createTestNet({ serverAddress: opts.serverCidr });
  const dataDir = join(dir, 'var');
  const procs: ChildProcess[] = [];
  let livery: NsLivery | undefined;
  let cmdb: SqliteCmdb | undefined;
  const stop = async () => {
    for (const p of procs) p.kill('SIGKILL');
    cmdb?.close();
    await livery?.stop();
    net.remove();
  };
  try {
    const setup = openCmdb(databasePath(dataDir));
    try {
      opts.prepare?.(setup);
    } finally {
      setup.close();
    }
    // Ready once DHCP listens: it starts after HTTP and TFTP.
    livery = await startLiveryInNs(
      net,
      dir,
      {
        dataDir,
        http: { listen: `${address}:${HTTP_PORT}` },
        tftp: { listen: `${address}:69` },
        dhcp: { enabled: true, interface: net.serverIf, address },
        ...opts.config,
      },
    );
    const socket = join(dir, 'livery-http.sock');
    await forward((cmd, args) => net.spawn(net.server, cmd, args), socket, `${address}:${HTTP_PORT}`, procs);
    const url = `http://${await forward((cmd, args) => spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }), '127.0.0.1:0', socket, procs)}`;
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    cmdb = openCmdb(databasePath(dataDir));
    return {
      net,
      address,
      url,
      token,
      dataDir,
      cmdb,
      api: apiClient(url, token),
      expose: async (socketPath, port) => void (await forward((cmd, args) => net.spawn(net.server, cmd, args), `${address}:${port}`, socketPath, procs)),
      output: livery.output,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
