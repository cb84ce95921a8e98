/**
 * A publish cut by kill -9 after some of its artifacts reached the blob store leaves blobs no
 * image lists; the next start removes them (and only them) without anyone running gc.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { makeBundle, randomArtifacts } from '../helpers/bundle.js';
import { serveUntilListening, type ServeProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
let server: ServeProcess | null = null;
afterAll(async () => {
  await server?.stop();
  dir.cleanup();
});

const args = ['--data-dir', dir.path, '--http-listen', '127.0.0.1:0', '--no-tftp'];
const blobsOnDisk = () => {
  const root = join(dir.path, 'blobs', 'sha256');
  return new Set(existsSync(root) ? readdirSync(root, { recursive: true }).map(String).filter((f) => /[0-9a-f]{64}$/.test(f)).map((f) => f.slice(-64)) : []);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function publish(tar: Uint8Array | ReadableStream<Uint8Array>): Promise<Response> {
  const token = readFileSync(join(dir.path, 'admin.token'), 'utf8').trim();
  return fetch(`${server!.url}/v1/images`, {
    method: 'POST',
    body: tar,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-tar' },
    duplex: 'half',
  } as RequestInit);
}

describe('blobs of a publish cut off by kill -9', () => {
  it('are removed at the next start; blobs of published images stay', async () => {
    server = await serveUntilListening(args);
    const kept = await makeBundle('debris', 'kept');
    expect((await publish(kept.tar)).status).toBe(201);
    const keptBlobs = blobsOnDisk();
    expect(keptBlobs.size).toBe(3);

    // Everything but the rootfs's bytes is sent, then the upload hangs: kernel and initrd are
    // committed to the store while the publish waits for the rest.
    const cut = await makeBundle('debris', 'cut', randomArtifacts({ kernel: 2 << 20, initrd: 2 << 20, rootfs: 8 << 20 }));
    const head = cut.tar.subarray(0, cut.tar.length - (6 << 20));
    const publishing = publish(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(head);
        },
      }),
    ).catch(() => null);
    const deadline = Date.now() + 30_000;
    while (blobsOnDisk().size < keptBlobs.size + 2) {
      if (Date.now() > deadline) throw new Error('the cut publish never committed its first blobs');
      await sleep(10);
    }
    const gone = new Promise((r) => server!.proc.once('exit', r));
    server.proc.kill('SIGKILL');
    await gone;
    await publishing;
    expect(blobsOnDisk().size).toBe(keptBlobs.size + 2);

    server = await serveUntilListening(args);
    expect(blobsOnDisk()).toEqual(keptBlobs);
    const cmdb = openCmdb(databasePath(dir.path));
    try {
      expect(cmdb.images.blobsInUse()).toEqual(keptBlobs);
    } finally {
      cmdb.close();
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }, 240_000);
});
