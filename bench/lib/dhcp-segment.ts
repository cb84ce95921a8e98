/**
 * Several livery nodes answering DHCP on one segment, for the benchmark's multi-node rows: a
 * bridge in a namespace of its own where perfdhcp runs, and one namespace per node plugged into
 * it with a veth. perfdhcp broadcasts on the bridge, so every node hears every DISCOVER and
 * REQUEST, as the nodes of one rack's segment do; each node answers the clients that hash to it
 * (dhcp.peers), and an exchange completed by any node counts.
 *
 * Everything is one /16: perfdhcp's address on the bridge is its giaddr (the relay address of
 * the single-server rows, so the subnet, pool and replies are theirs), the nodes sit next to it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createNamespace, createPrivateNetwork, type Namespace } from '../../src/lab/vm/network.js';
import { startPerfdhcpBroadcast } from '../../test/helpers/perfdhcp.js';
import { BENCH_HTTP_PORT, BENCH_NETWORK, createBenchSubnet, startLiveryNode, type BenchDatabase, type Perfdhcp } from './dhcp-measure.js';
import type { RunningServer } from './dhcp-refs.js';

const PREFIX = 16;
/** The node's veth inside its namespace (the name livery's dhcp.interface is given). */
const NODE_IF = 'seg0';
/** Host numbers of the nodes on the segment: 10.100.0.2, .3, … */
const FIRST_NODE_HOST = 2;
/** The single-server rows' subnet and pool; only the server address differs per node. */
const ON_SEGMENT = { ...BENCH_NETWORK, interface: NODE_IF };

export interface DhcpSegment {
  /** Offers perfdhcp's load by broadcast on the bridge. */
  perfdhcp: Perfdhcp;
  /** ACKs and NAKs each node sent (its /metrics, read as it stops), summed over every start: how the nodes shared the work. */
  replies: Map<string, { acks: number; naks: number }>;
  /** Starts one livery node per namespace on `database` (its benchmark subnet created first), each naming the others as dhcp.peers. */
  startLiveryNodes(dir: string, database: BenchDatabase): Promise<RunningServer>;
  /** Stops whatever runs in the namespaces and removes them. */
  remove(): void;
}

export function createDhcpSegment(nodes: number): DhcpSegment {
  const segment = createPrivateNetwork({ tag: 'dhcpseg', address: BENCH_NETWORK.router, prefix: PREFIX });
  const hosts: Namespace[] = [];
  const remove = () => {
    process.removeListener('exit', remove);
    for (const host of [...hosts, segment]) host.remove();
  };
  // A benchmark the runner abandons (timed out) still leaves no namespace behind.
  process.once('exit', remove);
  try {
    for (let i = 0; i < nodes; i++) {
      const host = createNamespace(`dhcpseg${i}`);
      hosts.push(host);
      segment.plug(host, NODE_IF, `${segment.hostAddress(FIRST_NODE_HOST + i)}/${PREFIX}`);
    }
  } catch (err) {
    remove();
    throw err;
  }
  const names = hosts.map((_, i) => `bench-node-${i + 1}`);
  const addresses = hosts.map((_, i) => segment.hostAddress(FIRST_NODE_HOST + i));
  const replies = new Map(names.map((name) => [name, { acks: 0, naks: 0 }]));
  const countReplies = (i: number) => {
    const metrics = segment.exec('curl', ['-sf', '--max-time', '10', `http://${addresses[i]}:${BENCH_HTTP_PORT}/metrics`]);
    const sent = (type: string) => Number(new RegExp(`^livery_dhcp_sent_total\\{type="${type}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    const tally = replies.get(names[i]!)!;
    tally.acks += sent('ack');
    tally.naks += sent('nak');
  };
  return {
    perfdhcp: (load) => startPerfdhcpBroadcast(segment, segment.bridge, load),
    replies,
    async startLiveryNodes(dir, database) {
      const started: RunningServer[] = [];
      const stop = async () => {
        await Promise.all(started.map((s) => s.stop()));
      };
      try {
        const dirs = names.map((name) => join(dir, name));
        for (const d of dirs) mkdirSync(d, { recursive: true });
        createBenchSubnet(join(dirs[0]!, 'var'), ON_SEGMENT, database);
        for (const [i, host] of hosts.entries()) {
          const nodeDir = dirs[i]!;
          const n = { ...ON_SEGMENT, address: addresses[i]! };
          started.push(await startLiveryNode(host, nodeDir, join(nodeDir, 'var'), n, database, { name: names[i]!, peers: names.filter((_, j) => j !== i) }));
        }
      } catch (err) {
        await stop();
        throw err;
      }
      return {
        stop: async () => {
          try {
            hosts.forEach((_, i) => countReplies(i));
          } finally {
            await stop();
          }
        },
      };
    },
    remove,
  };
}
