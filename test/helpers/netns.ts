import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Whether this process may create network namespaces (root); tests skip with this reason otherwise. */
export const NETNS_SKIP = process.getuid?.() === 0 ? null : 'needs root to create network namespaces (ip netns add)';

let counter = 0;

export function sh(cmd: string, args: string[], timeout = 30_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * A private two-host network: namespaces `server` and `client` joined by a veth pair, nothing
 * else. The server end gets serverCidr; the client end is left unconfigured for DHCP clients
 * (plus an optional relay address). remove() deletes both namespaces (and so the veths).
 */
export interface TestNet {
  server: string;
  client: string;
  serverIf: string;
  clientIf: string;
  exec(ns: string, cmd: string, args: string[], timeout?: number): string;
  spawn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  remove(): void;
}

/** Namespaces not yet removed: a process that ends without removing them (a timed-out benchmark) still does. */
const live = new Set<TestNet>();
process.on('exit', () => {
  for (const net of live) net.remove();
});

export function createTestNet(opts: { serverAddress: string; clientAddresses?: string[]; routes?: { ns: 'server' | 'client'; to: string; via: string }[] }): TestNet {
  const tag = `${process.pid % 100000}${counter++}`;
  const server = `lvs${tag}`;
  const client = `lvc${tag}`;
  const serverIf = `lvs${tag}`.slice(0, 15);
  const clientIf = `lvc${tag}`.slice(0, 15);
  const net: TestNet = {
    server,
    client,
    serverIf,
    clientIf,
    exec: (ns, cmd, args, timeout) => sh('ip', ['netns', 'exec', ns, cmd, ...args], timeout),
    spawn: (ns, cmd, args, o = {}) => spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...o }),
    remove: () => {
      live.delete(net);
      for (const ns of [server, client]) {
        try {
          // Kill anything still running inside before deleting the namespace.
          const pids = sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean);
          for (const pid of pids) {
            try {
              process.kill(Number(pid), 'SIGKILL');
            } catch {
              /* already gone */
            }
          }
          sh('ip', ['netns', 'del', ns]);
        } catch {
          /* not created or already removed */
        }
      }
    },
  };
  live.add(net);
  try {
    sh('ip', ['netns', 'add', server]);
    sh('ip', ['netns', 'add', client]);
    // Created straight inside the namespaces: the host's own link table is never touched.
    sh('ip', ['link', 'add', serverIf, 'netns', server, 'type', 'veth', 'peer', 'name', clientIf, 'netns', client]);
    net.exec(server, 'ip', ['addr', 'add', opts.serverAddress, 'dev', serverIf]);
    for (const [ns, dev] of [[server, serverIf], [client, clientIf]] as const) {
      net.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
      net.exec(ns, 'ip', ['link', 'set', dev, 'up']);
    }
    for (const a of opts.clientAddresses ?? []) net.exec(client, 'ip', ['addr', 'add', a, 'dev', clientIf]);
    // Broadcasts from test clients need a route out of the (otherwise routeless) client namespace.
    net.exec(client, 'ip', ['route', 'add', 'default', 'dev', clientIf]);
    for (const r of opts.routes ?? []) net.exec(r.ns === 'server' ? server : client, 'ip', ['route', 'add', r.to, 'via', r.via]);
  } catch (err) {
    net.remove();
    throw err;
  }
  return net;
}

/** One namespace of `net` as a host programs run in (exec and spawn without the namespace argument). */
export function hostIn(net: TestNet, ns: string): { exec(cmd: string, args: string[]): string; spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess } {
  return { exec: (cmd, args) => net.exec(ns, cmd, args), spawn: (cmd, args, opts) => net.spawn(ns, cmd, args, opts) };
}
