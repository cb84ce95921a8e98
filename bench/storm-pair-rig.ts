/**
 * The boot storm through several livery nodes on one segment (issue #28): a throwaway
 * PostgreSQL cluster holds the one CMDB; each node runs `livery serve` in a network namespace
 * of its own, all of them and the storm's client namespace plugged into one bridge (the VM
 * lab's pattern, src/lab/vm/network.ts). The nodes split the rack's clients between them
 * (`dhcp.peers`) and take over a dead peer's. With one node it is the same rig, for comparison.
 * test/ops/two-nodes-storm.test.ts kills a node in the middle of a storm on it;
 * bench/storm-pair.ts compares one node with two.
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openCmdbAt, type SqlCmdb } from '../src/cmdb/index.js';
import type { StormReport } from '../src/lab/storm/report.js';
import { createNamespace, createPrivateNetwork, type Namespace } from '../src/lab/vm/network.js';
import { CLI } from '../test/helpers/cli.js';
import { startLiveryIn, type NsLivery } from '../test/helpers/livery-ns.js';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { POOL, publishStormImage, registerRack, runStormIn, SERVER, STORM, type ArtifactSizes, type StormArgs } from './storm-rack.js';

/** The nodes, in order: the first is also the rack's gateway (SERVER); names sort as the order. */
const NODES = [
  { name: 'a', address: SERVER },
  { name: 'b', address: '10.150.0.2' },
] as const;
/** The bridge's own address: a host on the segment that is neither node nor machine. */
const BRIDGE_ADDRESS = '10.150.0.254';
/** Each namespace's end of its veth to the bridge. */
const PORT = 'lv0';
/** How long the second node may take to fetch the published image from the first. */
const IMAGE_SYNC_MS = 120_000;

export interface PairStormSetup {
  nodes: 1 | 2;
  /** Machines registered in the CMDB (the storms may use fewer). */
  machines: number;
  sizes: ArtifactSizes;
}

export interface StormNode {
  name: string;
  /** Its DHCP server identifier, TFTP and HTTP address on the segment. */
  address: string;
  /** A crash: SIGKILL to `livery serve`, nothing flushed. */
  kill9(): Promise<void>;
  /** Everything it has logged so far (JSON lines). */
  output(): string;
}

export interface PairStormRig {
  imageId: string;
  nodes: StormNode[];
  /** The CMDB the nodes share, opened from the caller's side (closed by close()). */
  cmdb: SqlCmdb;
  /** Runs the simulator in the client namespace against every node; resolves with its report. */
  storm(args: StormArgs): Promise<StormReport>;
  /** Stops the nodes, deletes the namespaces and the PostgreSQL cluster (the caller removes `dir`). */
  close(): Promise<void>;
}

let rigs = 0;

/**
 * PostgreSQL with the rack (`machines` machines on storm@stable, a /16 subnet), `nodes` livery
 * nodes (heartbeat 1 s, dead after 3 s) and the image, published through the first node and
 * ready on every node before this resolves. Everything it starts is stopped by close(), or
 * right away if setup fails, or when this process exits.
 */
export async function startPairStormRig(dir: string, setup: PairStormSetup): Promise<PairStormRig> {
  for (const built of [CLI, STORM]) statSync(built); // Both run from dist/: `make build` first.
  const tag = `pair${rigs++}`;
  const namespaces: Namespace[] = [];
  const livery: NsLivery[] = [];
  let pg: TestPostgres | undefined;
  let cmdb: SqlCmdb | undefined;
  const removeNamespaces = () => {
    for (const ns of namespaces.reverse()) ns.remove();
    namespaces.length = 0;
  };
  process.once('exit', removeNamespaces);
  const close = async () => {
    try {
      for (const node of livery) await node.stop();
      cmdb?.close();
    } finally {
      // Deleting a namespace kills whatever still runs in it (a node that would not stop).
      process.removeListener('exit', removeNamespaces);
      removeNamespaces();
      await pg?.stop();
    }
  };
  try {
    pg = await startPostgres();
    const database = { url: pg.socketUrl, passwordFile: pg.passwordFile };
    cmdb = openCmdbAt({ engine: 'postgres', url: pg.socketUrl, password: pg.password });
    const token = registerRack(cmdb, setup.machines);

    const bridge = createPrivateNetwork({ tag: `${tag}-br`, address: BRIDGE_ADDRESS, prefix: 16 });
    namespaces.push(bridge);
    const client = createNamespace(`${tag}-c`);
    namespaces.push(client);
    bridge.plug(client, PORT);
    // Broadcasts leave by the bridge; the whole pool is local, so each machine sends from its lease.
    client.exec('ip', ['route', 'add', 'default', 'dev', PORT]);
    client.exec('ip', ['route', 'add', 'local', POOL.cidr, 'dev', 'lo']);

    const members = NODES.slice(0, setup.nodes);
    const hosts: Namespace[] = [];
    for (const node of members) {
      const host = createNamespace(`${tag}-${node.name}`);
      namespaces.push(host);
      bridge.plug(host, PORT, `${node.address}/16`);
      hosts.push(host);
      const nodeDir = join(dir, node.name);
      mkdirSync(nodeDir, { recursive: true });
      const peers = members.filter((m) => m !== node).map((m) => m.name);
      livery.push(
        await startLiveryIn(host, nodeDir, {
          dataDir: join(nodeDir, 'var'),
          database,
          node: { name: node.name, heartbeatSeconds: 1, deadAfterSeconds: 3 },
          http: { listen: `${node.address}:8080`, workers: 0 },
          // A rack is many machines at once: the global limits go up, as in bench/storm.ts.
          tftp: { listen: `${node.address}:69`, maxTransfers: 4096 },
          dhcp: { enabled: true, interface: PORT, address: node.address, rateLimit: { globalPerSecond: 100_000 }, ...(peers.length > 0 ? { peers } : {}) },
        }),
      );
    }

    const image = await publishStormImage(hosts[0]!, `http://${SERVER}:8080`, token, dir, setup.sizes);
    await allReady(cmdb, image.imageId, members.map((m) => m.name));
    return {
      imageId: image.imageId,
      cmdb,
      nodes: members.map((m, i) => ({ name: m.name, address: m.address, kill9: livery[i]!.kill9, output: livery[i]!.output })),
      storm: (args) => runStormIn(client, members.map((m) => m.address), image, args),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Waits until every node holds the image's blobs (the others fetch them from the one it was published to). */
async function allReady(cmdb: SqlCmdb, imageId: string, nodes: string[]): Promise<void> {
  const deadline = Date.now() + IMAGE_SYNC_MS;
  for (;;) {
    const missing = nodes.filter((n) => !cmdb.imageNodes.isReady(imageId, n));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`image ${imageId} is still not ready on node(s) ${missing.join(', ')} after ${IMAGE_SYNC_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
