import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack } from 'tar-stream';
import type { Image } from '../cmdb/types.js';
import type { BlobStore } from './blob-store.js';
import { MANIFEST_ENTRY } from './entry-rules.js';
import { IDENTITY_ENTRY, identityBytes } from './identity.js';
import { manifestBytes } from './manifest.js';

const BLOCK = 512;
const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

export interface ExportedBundle {
  stream: Readable;
  /** Exact tar size, known up front when every name fits a plain ustar header; else null. */
  length: number | null;
}

/**
 * An image as a bundle again: manifest.json first, then the image's identity (its id, so every
 * copy keeps it), then every artifact streamed from the blob store in manifest order, but those
 * whose blob is in `omit` (a pull's receiver has them already: it fetches only what it lacks). Entries are written one after another and each file flows through
 * in chunks, so exporting a many-gigabyte image holds no whole file in memory.
 */
export function exportBundle(image: Image, blobs: BlobStore, omit: ReadonlySet<string> = new Set()): ExportedBundle {
  const artifacts = image.artifacts.filter((a) => !omit.has(a.sha256));
  const metadata: [string, Buffer][] = [
    [MANIFEST_ENTRY, manifestBytes(image.manifest)],
    [IDENTITY_ENTRY, identityBytes(image.id, image.manifest)],
  ];
  const entries = [...metadata.map(([name, bytes]) => ({ name, size: bytes.length })), ...artifacts];
  const pack = tarPack();
  const mtime = new Date(image.manifest.createdAt);
  const header = (name: string, size: number) => ({ name, size, mode: 0o644, mtime, type: 'file' as const });
  const write = async () => {
    for (const [name, bytes] of metadata) {
      await new Promise<void>((resolve, reject) => pack.entry(header(name, bytes.length), bytes, (err) => (err ? reject(err) : resolve())));
    }
    for (const a of artifacts) {
      await pipeline(createReadStream(blobs.path(a.sha256)), pack.entry(header(a.name, a.size)));
    }
    pack.finalize();
  };
  write().catch((err: Error) => pack.destroy(err));
  // Names over 100 bytes need an extra pax header; rather than guess its size, send no length.
  const plain = entries.every((e) => Buffer.byteLength(e.name) <= 100);
  // Each entry is a 512-byte header plus its data padded to 512; two zero blocks end the tar.
  const length = plain ? entries.reduce((n, e) => n + BLOCK + padded(e.size), 2 * BLOCK) : null;
  // tar-stream's streams are streamx streams; wrap them so callers get a plain Node Readable.
  return { stream: Readable.from(pack), length };
}
