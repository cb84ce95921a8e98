// Makes image bundles for the catalog tests: well-formed ones, and hand-crafted tar streams
// for the attacks the catalog must refuse (odd names, links, devices, wrong sizes...).
// Nothing is written to disk unless the test does it.

import { createHash, randomBytes } from 'node:crypto';
import { pack, type Header } from 'tar-stream';
import type { ArtifactRole, ImageManifest } from '../../src/catalog/manifest.js';
import type { TestServer } from './server.js';

export interface TestArtifact {
  name: string;
  role: ArtifactRole;
  content: Buffer;
}

/** One raw tar entry: any header tar-stream can write, with optional content. */
export interface RawEntry {
  header: Partial<Header> & { name: string };
  content?: Buffer;
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** kernel, initrd and rootfs filled with random bytes (sizes in bytes). */
export function randomArtifacts(sizes: { kernel?: number; initrd?: number; rootfs?: number } = {}): TestArtifact[] {
  return [
    { name: 'vmlinuz', role: 'kernel', content: randomBytes(sizes.kernel ?? 4096) },
    { name: 'initrd.img', role: 'initrd', content: randomBytes(sizes.initrd ?? 8192) },
    { name: 'rootfs.squashfs', role: 'rootfs', content: randomBytes(sizes.rootfs ?? 64 * 1024) },
  ];
}

export function manifestFor(name: string, version: string, artifacts: TestArtifact[], overrides: Partial<ImageManifest> = {}): ImageManifest {
  return {
    schema: 1,
    name,
    version,
    os: 'debian-bookworm',
    arch: 'amd64',
    createdAt: '2026-01-02T03:04:05Z',
    kernelArgs: 'console=ttyS0',
    artifacts: artifacts.map((a) => ({ name: a.name, role: a.role, size: a.content.length, sha256: sha256(a.content) })),
    recipe: `name ${name}\n`,
    packages: [{ name: 'busybox', version: '1:1.35.0-4' }],
    ...overrides,
  };
}

export const manifestEntry = (manifest: unknown): RawEntry => ({
  header: { name: 'manifest.json' },
  content: Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest)),
});

export const fileEntry = (a: TestArtifact): RawEntry => ({ header: { name: a.name }, content: a.content });

/**
 * Packs raw entries into a tar, exactly as given (no name clean-up). Typed as Buffer.concat's
 * result, backed by a plain ArrayBuffer, so it can go straight into a fetch body.
 */
export async function packEntries(entries: RawEntry[]): Promise<Buffer<ArrayBuffer>> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    p.on('data', (c) => chunks.push(c as Buffer));
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  for (const e of entries) {
    const header = { mode: 0o644, mtime: new Date(0), type: 'file' as const, ...e.header };
    if (header.type === 'file') p.entry({ ...header, size: e.content?.length ?? 0 }, e.content ?? Buffer.alloc(0));
    else p.entry(header);
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/**
 * Rewrites the type flag of the member called `name` (e.g. 'S', GNU sparse, which tar-stream
 * cannot write) and its header checksum, as a hand-made tar would carry it.
 */
export function withTypeflag(tar: Buffer<ArrayBuffer>, name: string, flag: string): Buffer<ArrayBuffer> {
  const out = Buffer.from(tar);
  for (let at = 0; at + 512 <= out.length; at += 512) {
    const block = out.subarray(at, at + 512);
    if (block.subarray(257, 262).toString('latin1') !== 'ustar' || block.subarray(0, 100).toString('latin1').replace(/\0+$/, '') !== name) continue;
    block[156] = flag.charCodeAt(0);
    block.fill(0x20, 148, 156);
    const sum = block.reduce((total, byte) => total + byte, 0);
    block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    return out;
  }
  throw new Error(`no member ${name} in the tar`);
}

/** A valid bundle of these artifacts: manifest.json first, then every artifact. */
export async function makeBundle(name: string, version: string, artifacts = randomArtifacts(), overrides: Partial<ImageManifest> = {}) {
  const manifest = manifestFor(name, version, artifacts, overrides);
  const tar = await packEntries([manifestEntry(manifest), ...artifacts.map(fileEntry)]);
  return { tar, manifest, artifacts };
}

/** POSTs a bundle to a running livery (a TestServer from ./server.js) as application/x-tar; `token: null` sends none. */
export function publishBundle(server: Pick<TestServer, 'api'>, tar: Buffer, query = '', token?: null): Promise<Response> {
  return server.api(`/v1/images${query}`, { method: 'POST', body: new Uint8Array(tar), headers: { 'content-type': 'application/x-tar' }, token });
}
