import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../src/builder/index.js';
import { LoadBalance } from '../../src/dhcp/load-balance.js';
import { PHONE_HOME, startLabLivery, type LabLivery } from '../../src/lab/vm/index.js';
import { createDatabase } from '../helpers/test-database.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { BootLab, CLI, firstEvent, type TracedBoot } from './helpers/boot-lab.js';

/**
 * Issue #28 §3 b: two livery nodes share one PostgreSQL CMDB and one segment (node a in the
 * lab's namespace, node b in another plugged into the same bridge), both answering DHCP with
 * each other as dhcp.peers. A real VM boots while a is dead (b takes over a's clients), and
 * again once a is back and b is dead, keeping its address.
 */
const CACHE = '/var/cache/livery/test-builder';
const MINIMAL = resolve('images/minimal/recipe');
const FULL_BOOT_MS = 15 * 60_000;
const isRoot = process.getuid?.() === 0;
/** node.deadAfterSeconds in the lab (3 s) plus a heartbeat and the 1 s cache of who is alive. */
const NOTICED_DEAD_MS = 6000;

/** A MAC whose client belongs to node a while both are alive: its boot through b is a takeover. */
function macOwnedByA(): string {
  const a = new LoadBalance('a', ['b'], () => true);
  for (let i = 1; i < 256; i++) {
    const mac = `52:54:00:e2:2e:${i.toString(16).padStart(2, '0')}`;
    if (a.serves(Uint8Array.from(mac.split(':'), (h) => parseInt(h, 16)))) return mac;
  }
  throw new Error('no MAC of node a among 255');
}
const MAC = macOwnedByA();
const HOSTNAME = 'pair-node';

describe.skipIf(!isRoot)('a VM boots from whichever of two livery nodes is alive (needs root, QEMU, PostgreSQL 15)', () => {
  const work = mkdtempSync(join(tmpdir(), 'livery-e2e-pair-'));
  const started = Date.now();
  let pg: TestPostgres;
  let lab: BootLab;
  let nodeB: LabLivery;
  let imageId: string;

  async function lease(node: LabLivery): Promise<string> {
    const leases = await node.cli<{ mac: string; ip: string; state: string }[]>(['lease', 'list']);
    return leases.find((l) => l.mac === MAC && l.state === 'bound')!.ip;
  }

  /** Boots the VM to its health report; its trace as `node` (the one alive) tells it. */
  async function bootThrough(name: string, node: LabLivery): Promise<TracedBoot> {
    const boot = await lab.boot(name, { mac: MAC, firmware: 'bios', until: PHONE_HOME, checks: true, timeoutMs: FULL_BOOT_MS });
    expect(boot.match.slice(1, 3)).toEqual([imageId, HOSTNAME]);
    const trace = await node.cli<{ boots: TracedBoot[] }>(['machine', 'trace', MAC, '--boots', '1']);
    const traced = trace.boots.at(-1)!;
    expect(traced).toMatchObject({ complete: true, reached: 'healthy', imageId });
    // The answering node sent the machine to its own boot door.
    expect(firstEvent(traced, 'dhcp-offer').detail).toMatchObject({ next: { kind: 'script', url: `${node.url}/boot/${MAC}.ipxe` } });
    return traced;
  }

  beforeAll(async () => {
    const build = await buildImage({ recipePath: MINIMAL, outDir: join(work, 'bundles'), cacheDir: CACHE });
    pg = await startPostgres();
    // Through the Unix socket: the nodes' namespaces have loopbacks of their own.
    const database = { url: createDatabase({ url: pg.socketUrl, password: pg.password }).url, passwordFile: pg.passwordFile };
    lab = await BootLab.open(work, { tag: 'e2e2n', label: 'two nodes', cluster: { node: 'a', peers: ['b'], database } });
    const hostB = lab.addHost('e2e2n-b');
    const addressB = lab.net.hostAddress(2);
    lab.net.plug(hostB, 'eth0', `${addressB}/24`);
    nodeB = await startLabLivery({
      net: lab.net,
      host: { ns: hostB, interface: 'eth0', address: addressB },
      dataDir: join(work, 'node-b'),
      cli: CLI,
      cluster: { node: 'b', peers: ['a'], database },
      rejoin: { adminToken: lab.livery.token },
    });
    imageId = (await lab.livery.cli<{ id: string }>(['image', 'publish', build.bundlePath, '--channel', 'stable'])).id;
    await lab.livery.cli(['machine', 'add', '--mac', MAC, '--hostname', HOSTNAME, '--image', 'minimal', '--channel', 'stable']);
    // Node b fetches the image's blobs from a (same id) before it may send a machine to it.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const explained = await nodeB.cli<{ action: string; reasons: string[] }>(['machine', 'explain', MAC]);
      if (!explained.reasons.join('\n').includes('is not on node b')) break;
      if (Date.now() > deadline) throw new Error(`node b never got image ${imageId}: ${explained.reasons.join('; ')}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(`e2e: setup (build, PostgreSQL, two nodes, image on both) took ${Math.round((Date.now() - started) / 1000)} s`);
  }, 30 * 60_000);

  afterAll(async () => {
    try {
      await nodeB?.stop();
      await lab?.close();
      await pg?.stop();
    } finally {
      rmSync(work, { recursive: true, force: true });
      console.log(`e2e: two-nodes total ${Math.round((Date.now() - started) / 1000)} s`);
    }
  });

  it(
    "boots through node b while node a, whose client it is, is dead; then through a once a is back and b is dead, keeping its address",
    async () => {
      await lab.livery.kill();
      await new Promise((r) => setTimeout(r, NOTICED_DEAD_MS));
      await bootThrough('pair-via-b', nodeB);
      const address = await lease(nodeB);

      await lab.restartLivery();
      await nodeB.kill();
      await new Promise((r) => setTimeout(r, NOTICED_DEAD_MS));
      await bootThrough('pair-via-a', lab.livery);
      expect(await lease(lab.livery)).toBe(address);
    },
    2 * FULL_BOOT_MS + 120_000,
  );
});
