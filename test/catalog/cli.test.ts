import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, randomArtifacts, sha256 } from '../helpers/bundle.js';
import { livery as run, serveProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

// The CLI as users run it: the built binary, against two real `livery serve` processes
// (each with its own data dir and port; HTTP served by worker processes as in production).
type Server = Awaited<ReturnType<typeof serveProcess>>;
let a: Server;
let b: Server;
const work = tempDir('livery-catalog-cli-');

beforeAll(async () => {
  const serve = (name: string) => serveProcess(['--data-dir', join(work.path, name), '--http-listen', '127.0.0.1:0', '--no-tftp']);
  [a, b] = await Promise.all([serve('a'), serve('b')]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  work.cleanup();
});

/** `livery --url <server> --token <its token> <args>`: stdout, or a thrown error carrying stderr. */
function livery(server: Server, ...args: string[]): string {
  const r = run(['--url', server.url, '--token', server.token, ...args]);
  if (r.code !== 0) throw new Error(`livery ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const api = async <T>(server: Server, path: string, init: RequestInit = {}): Promise<T> =>
  (await fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${server.token}`, ...(init.headers as object) } })).json() as Promise<T>;

async function bundleFile(name: string, version: string, artifacts = randomArtifacts()) {
  const bundle = await makeBundle(name, version, artifacts);
  const path = join(work.path, `${name}-${version}.tar`);
  writeFileSync(path, bundle.tar);
  return { ...bundle, path };
}

const idFrom = (out: string) => /as ([0-9a-f-]{36})/.exec(out)![1]!;
async function channelOf(s: Server, name: string, channel: string): Promise<string | undefined> {
  const { items } = await api<{ items: { name: string; channel: string; imageId: string }[] }>(s, '/v1/channels');
  return items.find((c) => c.name === name && c.channel === channel)?.imageId;
}

describe('livery image (CLI)', () => {
  it('publish, list, promote and rollback', async () => {
    const v1 = await bundleFile('cli-img', '1.0');
    const id1 = idFrom(livery(a, 'image', 'publish', v1.path, '--channel', 'testing'));
    expect(await channelOf(a, 'cli-img', 'testing')).toBe(id1);

    const listed = JSON.parse(livery(a, '--json', 'image', 'list')) as { id: string; channels: string[] }[];
    expect(listed).toContainEqual(expect.objectContaining({ id: id1, channels: ['cli-img@testing'] }));
    const table = livery(a, 'image', 'list').split('\n');
    expect(table[0]).toMatch(/^ID\s+NAME\s+VERSION\s+OS\s+PUBLISHED\s+CHANNELS$/);
    expect(table.find((l) => l.startsWith(id1))).toMatch(/cli-img\s+1\.0\s+debian-bookworm\/amd64\s+\S+\s+testing$/);

    const v2 = await bundleFile('cli-img', '2.0');
    const id2 = idFrom(livery(a, 'image', 'publish', v2.path));
    expect(livery(a, 'image', 'promote', id2, 'testing')).toMatch(`promoted cli-img@testing: ${id1.slice(0, 8)} → ${id2.slice(0, 8)}`);
    expect(await channelOf(a, 'cli-img', 'testing')).toBe(id2);
    expect(livery(a, 'image', 'rollback', 'cli-img', 'testing')).toMatch('rolled back cli-img@testing');
    expect(await channelOf(a, 'cli-img', 'testing')).toBe(id1);
    expect(() => livery(a, 'image', 'rollback', 'cli-img', 'testing')).toThrow(/409 channel: cli-img@testing has no earlier image/);

    const shown = livery(a, 'image', 'show', id1);
    expect(shown).toMatch(/^channels\s+cli-img@testing$/m);
    expect(shown).toMatch(/rootfs\.squashfs\s+rootfs\s+65536\s+[0-9a-f]{64}/);
  });

  it('pin, rm (refused while pinned) and gc', async () => {
    const img = await bundleFile('cli-pin', '1.0');
    const id = idFrom(livery(a, 'image', 'publish', img.path));
    await api(a, '/v1/machines', { method: 'POST', body: JSON.stringify({ macs: ['52:54:00:aa:bb:cc'], hostname: 'pinme' }), headers: { 'content-type': 'application/json' } });
    expect(livery(a, 'image', 'pin', 'pinme', id)).toMatch(`pinned pinme to ${id}`);
    expect((await api<{ image: { id: string } }>(a, '/v1/machines/pinme')).image.id).toBe(id);
    expect(() => livery(a, 'image', 'rm', id)).toThrow(/409 .*pinned by machine pinme/);
    livery(a, 'image', 'pin', 'pinme', '');
    expect(livery(a, 'image', 'rm', id)).toMatch(`deleted cli-pin 1.0 (${id})`);
    expect(JSON.parse(livery(a, '--json', 'image', 'gc'))).toMatchObject({ blobs: 3 });
  });

  it('export writes the bundle; pull copies an image between two servers, then says "already present"', async () => {
    const original = await bundleFile('cli-pull', '3.1', randomArtifacts({ rootfs: 2 * 1024 * 1024 }));
    const id = idFrom(livery(a, 'image', 'publish', original.path));

    const exported = join(work.path, 'exported.tar');
    livery(a, 'image', 'export', id, '-o', exported);
    const entries: [string, Buffer][] = [];
    const x = extract();
    x.end(readFileSync(exported));
    for await (const e of x) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      entries.push([e.header.name, Buffer.concat(chunks)]);
    }
    expect(entries.map(([n]) => n)).toEqual(['manifest.json', '.livery-image.json', 'vmlinuz', 'initrd.img', 'rootfs.squashfs']);
    expect(JSON.parse(entries[0]![1].toString())).toEqual(original.manifest);
    // The identity names the image and its manifest: sha256 of manifest.json exactly as exported.
    const manifestSha256 = sha256(entries[0]![1]);
    expect(JSON.parse(entries[1]![1].toString())).toEqual({ id, manifestSha256 });
    expect((await api<{ manifestSha256: string }>(a, `/v1/images/${id}`)).manifestSha256).toBe(manifestSha256);
    original.artifacts.forEach((art, i) => expect(entries[i + 2]![1].equals(art.content)).toBe(true));

    const out = livery(b, 'image', 'pull', `${a.url}/v1/images/${id}/bundle`, '--source-token', a.token, '--channel', 'stable');
    // The copy keeps the id (and the manifest's identity) it has at the source.
    const pulledId = /pulled cli-pull 3\.1 as ([0-9a-f-]{36})/.exec(out)![1]!;
    expect(pulledId).toBe(id);
    expect((await api<{ manifestSha256: string }>(b, `/v1/images/${id}`)).manifestSha256).toBe(manifestSha256);
    expect(await channelOf(b, 'cli-pull', 'stable')).toBe(pulledId);
    expect((await api<{ manifest: unknown }>(b, `/v1/images/${pulledId}`)).manifest).toEqual(original.manifest);
    const served = Buffer.from(await (await fetch(`${b.url}/images/${pulledId}/rootfs.squashfs`)).arrayBuffer());
    expect(served.equals(original.artifacts[2]!.content)).toBe(true);

    expect(livery(b, 'image', 'pull', '--from', a.url, '--id', id, '--source-token', a.token)).toMatch(`already present as ${pulledId}`);
    expect(() => livery(b, 'image', 'pull', '--from', a.url, '--id', id)).toThrow(/401 missing bearer token/);
  });
});
