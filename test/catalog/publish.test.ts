import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fileEntry,
  makeBundle,
  manifestEntry,
  manifestFor,
  packEntries,
  randomArtifacts,
  sha256,
  publishBundle,
  type RawEntry,
  withTypeflag,
} from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
const MAX_ARTIFACT = 1024 * 1024;
const MAX_BUNDLE = 4 * 1024 * 1024;

beforeAll(async () => {
  server = await startTestServer({ catalog: { maxArtifactBytes: MAX_ARTIFACT, maxBundleBytes: MAX_BUNDLE } });
});
afterAll(async () => {
  await server?.stop();
});

/** Every file under blobs/ (blobs and temp files), relative to the data dir. */
function blobFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else out.push(relative(server.dataDir, join(dir, e.name)));
    }
  };
  walk(join(server.dataDir, 'blobs'));
  return out.sort();
}

async function imageIds(): Promise<string[]> {
  const res = await server.api('/v1/images');
  return ((await res.json()) as { items: { id: string }[] }).items.map((i) => i.id).sort();
}

/** What "the catalog is unchanged" means: same images, same files under blobs/, no temp files. */
async function snapshot() {
  return { images: await imageIds(), files: blobFiles() };
}

async function expectRejected(tar: Buffer, status: number, message: string | RegExp) {
  const before = await snapshot();
  const res = await publishBundle(server, tar);
  const body = (await res.json()) as { error: string };
  expect(res.status, body.error).toBe(status);
  expect(body.error).toMatch(message);
  expect(await snapshot()).toEqual(before);
  expect(blobFiles().filter((f) => f.startsWith('blobs/tmp/'))).toEqual([]);
}

describe('publish', () => {
  it('stores every artifact under its sha256 and lists the image', async () => {
    const { tar, manifest, artifacts } = await makeBundle('happy', '1.0');
    const res = await publishBundle(server, tar);
    expect(res.status).toBe(201);
    const image = (await res.json()) as { id: string; name: string; version: string; artifacts: unknown[]; kernelArgs: string; channels: string[] };
    expect(image.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(image).toMatchObject({ name: 'happy', version: '1.0', kernelArgs: 'console=ttyS0', channels: [] });
    expect(image.artifacts).toEqual(manifest.artifacts);
    for (const a of artifacts) {
      const path = join(server.dataDir, 'blobs', 'sha256', sha256(a.content).slice(0, 2), sha256(a.content));
      expect(readFileSync(path).equals(a.content)).toBe(true);
    }
    expect(await imageIds()).toContain(image.id);
    const full = (await (await server.api(`/v1/images/${image.id}`)).json()) as { recipe: string; manifest: unknown };
    expect(full.recipe).toBe('name happy\n');
    expect(full.manifest).toEqual(manifest);
    const events = server.livery.cmdb.events.tail(0).filter((e) => e.type === 'image-published' && e.imageId === image.id);
    expect(events.map((e) => e.detail)).toEqual([{ name: 'happy', version: '1.0' }]);
    expect(server.livery.cmdb.audit.list().some((a) => a.action === 'image.publish' && a.target === image.id)).toBe(true);
  });

  it('promotes on publish with ?channel=', async () => {
    const { tar } = await makeBundle('happy', '2.0');
    const res = await publishBundle(server, tar, '?channel=testing');
    expect(res.status).toBe(201);
    const image = (await res.json()) as { id: string; channels: string[] };
    expect(image.channels).toEqual(['happy@testing']);
    expect(server.livery.cmdb.images.resolve({ name: 'happy', channel: 'testing', id: null })?.id).toBe(image.id);
  });

  it('refuses a second (name, version) with 409, saying whether the artifacts are the same', async () => {
    const first = await makeBundle('dup', '1.0');
    const created = (await (await publishBundle(server, first.tar)).json()) as { id: string };
    const again = await publishBundle(server, first.tar);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ imageId: created.id, identical: true });
    const other = await makeBundle('dup', '1.0');
    const different = await publishBundle(server, other.tar);
    expect(different.status).toBe(409);
    expect(await different.json()).toMatchObject({ imageId: created.id, identical: false });
  });

  it('requires a publisher token', async () => {
    const { tar } = await makeBundle('noauth', '1.0');
    const res = await publishBundle(server, tar, '', null);
    expect(res.status).toBe(401);
  });
});

describe('publish refuses bad bundles and leaves the catalog unchanged', () => {
  const artifacts = randomArtifacts();
  const manifest = manifestFor('attack', '1.0', artifacts);
  const [kernel, initrd, rootfs] = artifacts as [typeof artifacts[0], typeof artifacts[0], typeof artifacts[0]];
  const good = [manifestEntry(manifest), fileEntry(kernel), fileEntry(initrd)];
  const cases: [string, RawEntry[], RegExp][] = [
    ['a path with ..', [...good, { header: { name: '../x' }, content: rootfs.content }], /entry "\.\.\/x": path escapes the bundle/],
    ['an absolute path', [...good, { header: { name: '/abs' }, content: rootfs.content }], /entry "\/abs": absolute path/],
    ['a nested path', [...good, { header: { name: 'a/b' }, content: rootfs.content }], /entry "a\/b": not at the top level/],
    ['a symlink', [...good, { header: { name: 'rootfs.squashfs', type: 'symlink', linkname: '/etc/passwd' } }], /entry rootfs\.squashfs: is a symbolic link/],
    ['a hard link', [...good, { header: { name: 'rootfs.squashfs', type: 'link', linkname: 'vmlinuz' } }], /entry rootfs\.squashfs: is a hard link/],
    ['a character device', [...good, { header: { name: 'rootfs.squashfs', type: 'character-device', devmajor: 1, devminor: 3 } }], /is a character device/],
    ['a fifo', [...good, { header: { name: 'rootfs.squashfs', type: 'fifo' } }], /entry rootfs\.squashfs: is a FIFO/],
    ['a directory', [...good, { header: { name: 'rootfs.squashfs/', type: 'directory' } }], /not at the top level|is a directory/],
    ['a directory named like an artifact', [...good, { header: { name: 'rootfs.squashfs', type: 'directory' } }], /entry rootfs\.squashfs: is a directory/],
    ['a duplicate entry', [...good, fileEntry(kernel), fileEntry(rootfs)], /entry vmlinuz: appears twice/],
    ['a second manifest.json', [...good, manifestEntry(manifest), fileEntry(rootfs)], /entry manifest\.json: appears twice/],
    ['an entry not in the manifest', [...good, { header: { name: 'extra.bin' }, content: Buffer.from('x') }, fileEntry(rootfs)], /entry extra\.bin: not listed in manifest\.json/],
    ['a missing artifact', good, /entry rootfs\.squashfs: listed in manifest\.json but neither in the bundle nor in this server's blob store/],
    ['manifest.json not first', [fileEntry(kernel), manifestEntry(manifest), fileEntry(initrd), fileEntry(rootfs)], /entry vmlinuz: manifest\.json must be the first entry/],
    ['manifest.json that is not JSON', [manifestEntry('{"schema": 1,'), fileEntry(kernel)], /entry manifest\.json: invalid JSON/],
    ['manifest.json failing the schema', [manifestEntry({ ...manifest, arch: 'AMD 64' }), fileEntry(kernel)], /entry manifest\.json: \/arch/],
    ['manifest.json without a kernel', [manifestEntry({ ...manifest, artifacts: manifest.artifacts.slice(1) })], /entry manifest\.json: .*expected exactly one kernel/],
    ['an empty tar', [], /bundle: is empty; manifest\.json must be its first entry/],
  ];
  it.each(cases)('%s', async (_label, entries, message) => {
    await expectRejected(await packEntries(entries), 400, message);
  });

  it('a GNU sparse member (a type flag livery does not write) in place of an artifact', async () => {
    const tar = withTypeflag(await packEntries([...good, fileEntry(rootfs)]), 'rootfs.squashfs', 'S');
    await expectRejected(tar, 400, /entry rootfs\.squashfs: is a tar member of a type livery does not write; only regular files are allowed/);
  });

  it('a manifest.json of an unknown member type', async () => {
    const tar = withTypeflag(await packEntries([...good, fileEntry(rootfs)]), 'manifest.json', 'V');
    await expectRejected(tar, 400, /entry manifest\.json: is a tar member of a type livery does not write/);
  });

  it('a pax-format sparse member', async () => {
    const sparse = { header: { name: 'rootfs.squashfs', pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' } }, content: rootfs.content };
    await expectRejected(await packEntries([...good, sparse]), 400, /entry rootfs\.squashfs: is a GNU sparse file/);
  });

  it('a 2 MB pax header before manifest.json, and one before an artifact', async () => {
    const pax = { comment: 'x'.repeat(2 << 20) };
    const first = await packEntries([{ ...manifestEntry(manifest), header: { name: 'manifest.json', pax } }, fileEntry(kernel), fileEntry(initrd), fileEntry(rootfs)]);
    await expectRejected(first, 400, /entry manifest\.json: has \d+ bytes of tar headers; at most 16384 are allowed/);
    const later = await packEntries([...good, { header: { name: 'rootfs.squashfs', pax: { comment: 'x'.repeat(20_000) } }, content: rootfs.content }]);
    await expectRejected(later, 400, /entry rootfs\.squashfs: has \d+ bytes of tar headers; at most 16384 are allowed/);
  });

  it('accepts a member whose long name comes in a pax header, as tar writers make it', async () => {
    const long = { name: `${'l'.repeat(110)}.bin`, role: 'extra' as const, content: randomBytes(1000) };
    const all = [kernel, initrd, rootfs, long];
    const res = await publishBundle(server, await packEntries([manifestEntry(manifestFor('longname', '1.0', all)), ...all.map(fileEntry)]));
    expect(res.status, await res.clone().text()).toBe(201);
  });

  it('a wrong sha256', async () => {
    const tampered = Buffer.from(rootfs.content);
    tampered[100] ^= 0xff;
    const tar = await packEntries([...good, { header: { name: 'rootfs.squashfs' }, content: tampered }]);
    await expectRejected(tar, 400, new RegExp(`entry rootfs\\.squashfs: sha256 mismatch \\(manifest ${sha256(rootfs.content).slice(0, 12)}…, got ${sha256(tampered).slice(0, 12)}…\\)`));
  });

  it('a wrong size', async () => {
    const tar = await packEntries([...good, { header: { name: 'rootfs.squashfs' }, content: rootfs.content.subarray(1) }]);
    await expectRejected(tar, 400, `entry rootfs.squashfs: size mismatch (manifest ${rootfs.content.length} bytes, got ${rootfs.content.length - 1})`);
  });

  it('an entry over catalog.maxArtifactBytes', async () => {
    const big = { name: 'rootfs.squashfs', role: 'rootfs' as const, content: randomBytes(MAX_ARTIFACT + 1) };
    const m = manifestFor('attack', '1.0', [kernel, initrd, big]);
    const tar = await packEntries([manifestEntry(m), fileEntry(kernel), fileEntry(initrd), fileEntry(big)]);
    await expectRejected(tar, 400, `entry rootfs.squashfs: ${MAX_ARTIFACT + 1} bytes exceeds catalog.maxArtifactBytes (${MAX_ARTIFACT})`);
  });

  it('a bundle over catalog.maxBundleBytes, declared (413) or streamed (400)', async () => {
    const parts = Array.from({ length: 5 }, (_, i) => ({ name: `extra${i}`, role: 'extra' as const, content: randomBytes(MAX_ARTIFACT - 1024) }));
    const all = [kernel, initrd, rootfs, ...parts];
    const tar = await packEntries([manifestEntry(manifestFor('attack', '1.0', all)), ...all.map(fileEntry)]);
    expect(tar.length).toBeGreaterThan(MAX_BUNDLE);
    await expectRejected(tar, 413, /larger than catalog\.maxBundleBytes/);
    // Without a Content-Length the limit is enforced while reading.
    const before = await snapshot();
    const res = await server.api('/v1/images', {
      method: 'POST',
      body: new Blob([new Uint8Array(tar)]).stream(),
      duplex: 'half',
      headers: { 'content-type': 'application/x-tar' },
    } as RequestInit);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/bundle: larger than catalog\.maxBundleBytes/);
    expect(await snapshot()).toEqual(before);
  });

  it('a bundle cut off mid-stream (client disconnects)', async () => {
    const big = randomArtifacts({ rootfs: MAX_ARTIFACT - 4096 });
    const { tar } = await makeBundle('cutoff', '1.0', big);
    const before = await snapshot();
    const failedBefore = await publishCount('failed');
    await new Promise<void>((resolve, reject) => {
      const req = request(`${server.url}/v1/images`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/x-tar', 'content-length': tar.length },
      });
      req.on('error', () => resolve());
      req.on('response', () => reject(new Error('the server answered a half-sent bundle')));
      // Everything up to the middle of the rootfs, then the socket goes away.
      req.write(tar.subarray(0, tar.length - 300 * 1024), () => setTimeout(() => req.destroy(), 100));
    });
    // The server notices the disconnect asynchronously; wait (bounded) for it to count the failure.
    for (let i = 0; i < 100 && (await publishCount('failed')) === failedBefore; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await publishCount('failed')).toBe(failedBefore + 1);
    expect(await snapshot()).toEqual(before);
  });
});

async function publishCount(result: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = new RegExp(`^livery_catalog_publishes_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('blobs shared between images', () => {
  it('stores a shared artifact once and keeps it while any image lists it', async () => {
    const [kernel, initrd, rootfs] = randomArtifacts() as [ReturnType<typeof randomArtifacts>[0], ReturnType<typeof randomArtifacts>[0], ReturnType<typeof randomArtifacts>[0]];
    const other = randomArtifacts();
    const a = await makeBundle('shared-a', '1.0', [kernel, initrd, rootfs]);
    const b = await makeBundle('shared-b', '1.0', [kernel, other[1]!, other[2]!]);
    const before = blobFiles().length;
    const ra = (await (await publishBundle(server, a.tar)).json()) as { id: string };
    const rb = await publishBundle(server, b.tar);
    expect(rb.status).toBe(201);
    expect(blobFiles().length).toBe(before + 5);
    expect((await server.api(`/v1/images/${ra.id}`, { method: 'DELETE' })).status).toBe(200);
    const gc = (await (await server.api('/v1/images/gc', { method: 'POST' })).json()) as { blobs: number; bytes: number };
    expect(gc).toMatchObject({ blobs: 2, bytes: initrd.content.length + rootfs.content.length });
    const kernelPath = join(server.dataDir, 'blobs', 'sha256', sha256(kernel.content).slice(0, 2), sha256(kernel.content));
    expect(existsSync(kernelPath)).toBe(true);
  });

  it('a failed publish does not take a blob that a concurrent good publish needs', async () => {
    const shared = randomArtifacts({ kernel: 512 * 1024 });
    const good = await makeBundle('race-good', '1.0', shared);
    const badArtifacts = [shared[0]!, ...randomArtifacts().slice(1)];
    const badManifest = manifestFor('race-bad', '1.0', badArtifacts);
    const bad = await packEntries([manifestEntry(badManifest), fileEntry(badArtifacts[0]!), { header: { name: 'initrd.img' }, content: randomBytes(badArtifacts[1]!.content.length) }]);
    const [rg, rb] = await Promise.all([publishBundle(server, good.tar), publishBundle(server, bad)]);
    expect(rb.status).toBe(400);
    expect(rg.status).toBe(201);
    const image = (await rg.json()) as { id: string };
    for (const a of shared) expect(existsSync(join(server.dataDir, 'blobs', 'sha256', sha256(a.content).slice(0, 2), sha256(a.content)))).toBe(true);
    const served = await fetch(`${server.url}/images/${image.id}/vmlinuz`);
    expect(Buffer.from(await served.arrayBuffer()).equals(shared[0]!.content)).toBe(true);
  });
});
