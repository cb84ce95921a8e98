/**
 * A machine pinned to an image id boots the same image at every site: two real `livery serve`
 * processes on loopback (own data dirs), the image published on A, a machine on B pinned to A's
 * id before B has it, a pull into B cut by kill -9, then the real `livery image pull`.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, randomArtifacts } from '../helpers/bundle.js';
import { livery as run, serveProcess, serveUntilListening, type ServeProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const work = tempDir('livery-mirror-pin-');
const argsOf = (name: string) => ['--data-dir', join(work.path, name), '--http-listen', '127.0.0.1:0', '--no-tftp'];
let a: ServeProcess & { token: string };
let b: ServeProcess & { token: string };

beforeAll(async () => {
  [a, b] = await Promise.all([serveProcess(argsOf('a')), serveProcess(argsOf('b'))]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  work.cleanup();
});

function livery(server: { url: string; token: string }, ...args: string[]) {
  return run(['--url', server.url, '--token', server.token, ...args]);
}

const blobsOf = (name: string) => {
  const root = join(work.path, name, 'blobs', 'sha256');
  return existsSync(root) ? readdirSync(root, { recursive: true }).map(String).filter((f) => /[0-9a-f]{64}$/.test(f)).length : 0;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MAC = '52:54:00:28:00:01';
const script = async (s: { url: string }) => (await fetch(`${s.url}/boot/${MAC}.ipxe`)).text();

describe('a pin by image id across two servers', () => {
  it('pinned on B before the pull (warned), a pull cut by kill -9 leaves nothing, the real pull makes B boot A’s image', async () => {
    const original = await makeBundle('site-img', '1.0', randomArtifacts({ kernel: 1 << 20, initrd: 1 << 20, rootfs: 8 << 20 }));
    const file = join(work.path, 'site-img.tar');
    writeFileSync(file, original.tar);
    const published = livery(a, 'image', 'publish', file);
    expect(published.code).toBe(0);
    const id = /as ([0-9a-f-]{36})/.exec(published.stdout)![1]!;

    const added = livery(b, 'machine', 'add', '--mac', MAC, '--hostname', 'pinned', '--image-id', id);
    expect(added.code).toBe(0);
    expect(added.stderr).toContain(`warning: image: no image with id ${id} in the catalog yet`);
    const waiting = await script(b);
    expect(waiting).toContain(`pinned image ${id} is not in this catalog`);
    expect(waiting).not.toContain('livery.image=');

    // A pull whose stream stops after the kernel and initrd: B commits those blobs, then dies.
    const res = await fetch(`${a.url}/v1/images/${id}/bundle`, { headers: { authorization: `Bearer ${a.token}` } });
    const bundle = Buffer.from(await res.arrayBuffer());
    const head = bundle.subarray(0, bundle.length - (6 << 20));
    const before = blobsOf('b');
    const pulling = fetch(`${b.url}/v1/images`, {
      method: 'POST',
      headers: { authorization: `Bearer ${b.token}`, 'content-type': 'application/x-tar' },
      body: new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new Uint8Array(head)) }),
      duplex: 'half',
    } as RequestInit).catch(() => null);
    const deadline = Date.now() + 60_000;
    while (blobsOf('b') < before + 2) {
      if (Date.now() > deadline) throw new Error('the cut pull never committed its first blobs');
      await sleep(10);
    }
    const gone = new Promise((r) => b.proc.once('exit', r));
    b.proc.kill('SIGKILL');
    await gone;
    await pulling;
    b = { ...(await serveUntilListening(argsOf('b'))), token: b.token };
    expect((await fetch(`${b.url}/v1/images/${id}`, { headers: { authorization: `Bearer ${b.token}` } })).status).toBe(404);
    expect(await script(b)).not.toContain('livery.image=');

    const pulled = livery(b, 'image', 'pull', '--from', a.url, '--id', id, '--source-token', a.token);
    expect(pulled.stderr).toBe('');
    expect(pulled.stdout.trim()).toBe(`pulled site-img 1.0 as ${id}`);
    const booting = await script(b);
    expect(booting).toContain(`livery.image=${id}`);
    const kernelUrl = /^kernel\s+(?:--name\s+\S+\s+)?(\S+)/m.exec(booting)?.[1];
    expect(kernelUrl).toContain(`${b.url}/images/${id}/vmlinuz`);
    const kernel = Buffer.from(await (await fetch(kernelUrl!)).arrayBuffer());
    expect(kernel.equals(original.artifacts[0]!.content)).toBe(true);

    // Pulling again moves nothing and says so; the machine still boots the same image.
    expect(livery(b, 'image', 'pull', '--from', a.url, '--id', id, '--source-token', a.token).stdout.trim()).toBe(`already present as ${id}`);
    expect(await script(b)).toContain(`livery.image=${id}`);

    // The next version shares kernel and initrd: the pull fetches only the rootfs.
    const next = await makeBundle('site-img', '2.0', [original.artifacts[0]!, original.artifacts[1]!, randomArtifacts({ rootfs: 1 << 20 })[2]!]);
    writeFileSync(file, next.tar);
    const id2 = /as ([0-9a-f-]{36})/.exec(livery(a, 'image', 'publish', file).stdout)![1]!;
    const thin = livery(b, 'image', 'pull', '--from', a.url, '--id', id2, '--source-token', a.token);
    expect(thin.stdout.trim()).toBe(`pulled site-img 2.0 as ${id2} (1 of 3 artifacts fetched; 2 already here)`);
    const rootfs = Buffer.from(await (await fetch(`${b.url}/images/${id2}/rootfs.squashfs`)).arrayBuffer());
    expect(rootfs.equals(next.artifacts[2]!.content)).toBe(true);
  }, 300_000);
});
