/**
 * Blobs across livery nodes on one PostgreSQL CMDB (issue #28): an image published on one node
 * is booted by another only once that node holds its blobs, which it fetches by sha256 from a
 * live node that holds them (refusing a peer whose bytes do not match), under the same id.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdbAt, type SqlCmdb } from '../../src/cmdb/index.js';
import type { Livery } from '../../src/daemon/index.js';
import { makeBundle, publishBundle, randomArtifacts, sha256 } from '../helpers/bundle.js';
import { startPgNode } from '../helpers/pg-node.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { apiClient } from '../helpers/server.js';
import { createDatabase } from '../helpers/test-database.js';
import { tempDir } from '../helpers/tmp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 100 ms until it holds or `ms` have passed; returns whether it held. */
async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) if (await check()) return true;
  return check();
}

describe('an image published on one node becomes available on every node', () => {
  let pg: TestPostgres;
  let database: { url: string; password: string };
  let db: SqlCmdb;
  const dirs: ReturnType<typeof tempDir>[] = [];
  const nodes: Livery[] = [];
  // A peer that says it holds the image and serves bytes of the right size that are not it.
  let corrupt: Server;
  let corruptUrl: string;
  let corruptRequests = 0;
  let corruptBeat: NodeJS.Timeout | undefined;
  const sizes = new Map<string, number>();

  const start = async (name: string, dir = tempDir()): Promise<Livery> => {
    if (!dirs.includes(dir)) dirs.push(dir);
    const livery = await startPgNode(pg, database.url, name, dir.path);
    nodes.push(livery);
    return livery;
  };
  const stop = async (node: Livery) => {
    await node.close();
    nodes.splice(nodes.indexOf(node), 1);
  };

  beforeAll(async () => {
    pg = await startPostgres();
    database = createDatabase(pg);
    corrupt = createServer((req, res) => {
      corruptRequests++;
      const size = sizes.get(new URL(req.url!, corruptUrl).pathname.split('/').pop()!) ?? 0;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      res.end(randomBytes(size));
    });
    await new Promise<void>((resolve) => corrupt.listen(0, '127.0.0.1', resolve));
    corruptUrl = `http://127.0.0.1:${(corrupt.address() as AddressInfo).port}`;
  }, 120_000);

  afterAll(async () => {
    clearInterval(corruptBeat);
    for (const n of nodes.reverse()) await n.close().catch(() => undefined);
    db?.close();
    await new Promise((resolve) => corrupt?.close(resolve));
    await pg?.stop();
    for (const d of dirs) d.cleanup();
  });

  it('B boots a machine into it only once B holds its blobs, fetched from A (not from a peer serving wrong bytes), byte for byte A\'s', async () => {
    const dirA = tempDir();
    let a = await start('node-a', dirA);
    const token = a.bootstrapToken!;
    const api = (node: Livery) => apiClient(node.url, token);
    db = openCmdbAt({ engine: 'postgres', ...database });

    const artifacts = randomArtifacts({ kernel: 300_000, initrd: 700_000, rootfs: 3_000_000 });
    for (const x of artifacts) sizes.set(x.name, x.content.length);
    const { tar } = await makeBundle('shared', 'v1', artifacts);
    const published = await publishBundle({ api: api(a) }, tar);
    expect(published.status).toBe(201);
    const image = (await published.json()) as { id: string };
    const mac = '02:00:00:28:b1:01';
    expect((await api(a)('/v1/machines', { method: 'POST', json: { macs: [mac], hostname: 'blob-1', image: { id: image.id } } })).status).toBe(201);
    // Publishing marks the image ready on the node that holds its blobs, and only there.
    expect(db.imageNodes.readyOn(image.id)).toEqual(['node-a']);

    // The only live holder B can find serves corrupt bytes: A goes down before B starts.
    const beatCorrupt = () =>
      db.tx(() => db.nodes.beat({ name: 'node-corrupt', url: corruptUrl, version: 'test', host: 'test', dataDir: '/nonexistent', pid: 1, dhcp: false, startedAt: Date.now() }, 3000));
    beatCorrupt();
    corruptBeat = setInterval(beatCorrupt, 500);
    db.tx(() => db.imageNodes.markReady(image.id, 'node-corrupt'));
    await stop(a);
    const dirB = tempDir();
    const b = await start('node-b', dirB);

    // B asks the corrupt peer, refuses what it sends, and asks again later: never ready, nothing stored.
    expect(await until(() => corruptRequests >= 2, 20_000)).toBe(true);
    expect(db.imageNodes.isReady(image.id, 'node-b')).toBe(false);
    const blobDir = (x: (typeof artifacts)[number]) => join(dirB.path, 'blobs', 'sha256', sha256(x.content).slice(0, 2), sha256(x.content));
    for (const x of artifacts) expect(existsSync(blobDir(x))).toBe(false);
    const waiting = await (await fetch(`${b.url}/boot/${mac}.ipxe`)).text();
    expect(waiting).toContain(`image ${image.id} (shared v1) is not on node node-b yet`);
    expect(waiting).toMatch(/^sleep \d+$/m);
    expect(waiting).not.toContain('/images/');
    const explained = (await (await api(b)(`/v1/machines/${mac}/explain`)).json()) as { action: string; reasons: string[] };
    expect(explained.action).toBe('wait');
    expect(explained.reasons.join('\n')).toContain('is not on node node-b yet');

    // A comes back: B fetches every blob from it and marks the image ready.
    a = await start('node-a', dirA);
    expect(await until(() => db.imageNodes.isReady(image.id, 'node-b'), 30_000)).toBe(true);
    expect(db.imageNodes.readyOn(image.id)).toEqual(['node-a', 'node-b', 'node-corrupt']);
    for (const x of artifacts) expect(readFileSync(blobDir(x)).equals(x.content)).toBe(true);

    // B's script boots the image from B, under the same id; every artifact is A's, byte for byte.
    const script = await (await fetch(`${b.url}/boot/${mac}.ipxe`)).text();
    expect(script).toContain(`${b.url}/images/${image.id}/vmlinuz?mac=`);
    expect(script).toContain(`livery.image=${image.id}`);
    for (const x of artifacts) {
      const fromB = Buffer.from(await (await fetch(`${b.url}/images/${image.id}/${x.name}`)).arrayBuffer());
      const fromA = Buffer.from(await (await fetch(`${a.url}/images/${image.id}/${x.name}`)).arrayBuffer());
      expect(fromB.equals(x.content)).toBe(true);
      expect(fromB.equals(fromA)).toBe(true);
    }
  }, 120_000);
});
