import { createHash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, type Extract } from 'tar-stream';
import { CmdbError } from '../cmdb/errors.js';
import type { BlobStore } from './blob-store.js';
import { checkArtifactEntry, checkFraming, checkRegularFile, MANIFEST_ENTRY } from './entry-rules.js';
import { BundleError } from './errors.js';
import { IDENTITY_ENTRY, MAX_IDENTITY_BYTES, parseIdentity, type BundleIdentity } from './identity.js';
import { manifestProblems, type ImageManifest, type ManifestArtifact } from './manifest.js';

/** manifest.json is read into memory; recipe and package list keep it far below this. */
const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

/** One entry of an extract stream: its header plus a readable of its bytes. */
type Entry = Extract extends AsyncIterable<infer E> ? E : never;

export interface ReceiveLimits {
  maxBundleBytes: number;
  maxArtifactBytes: number;
}

export interface ReceivedBundle {
  manifest: ImageManifest;
  /** Null for a builder's bundle (the catalog mints an id); set for an export of an existing image. */
  identity: BundleIdentity | null;
}

/** What one publish has touched in the blob store, so a failed publish can undo exactly that. */
export interface ReceiveLedger {
  /** Blobs this publish counts on (claimed in the BlobStore until the publish ends). */
  claimed: string[];
  /** Blobs this publish created (they did not exist before it). */
  created: string[];
}

/**
 * Reads a bundle stream entry by entry (never whole in memory): manifest.json first, then each
 * artifact hashed while it is written to a temp file, fsynced, checked against the manifest and
 * linked into the blob store. `onManifest` runs before any artifact is read (to refuse a
 * duplicate early). An artifact whose blob the store already holds may be left out. Resolves
 * with the manifest, and the identity an exported bundle carries, once every artifact is here intact.
 */
export async function receiveBundle(
  source: Readable,
  blobs: BlobStore,
  limits: ReceiveLimits,
  ledger: ReceiveLedger,
  onManifest: (manifest: ImageManifest, identity: BundleIdentity | null) => void,
): Promise<ReceivedBundle> {
  const extract = tarExtract();
  const feeding = pipeline(source, byteLimit(limits.maxBundleBytes), extract);
  // Observed below; this keeps an early failure from surfacing as an unhandled rejection.
  feeding.catch(() => undefined);
  try {
    let manifest: ImageManifest | null = null;
    let identity: BundleIdentity | null = null;
    let decided = false;
    let expected = new Map<string, ManifestArtifact>();
    const seen = new Set<string>();
    let framedUpTo = 0;
    for await (const entry of extract) {
      framedUpTo = checkFraming(entry.header, framedUpTo);
      if (!manifest) {
        manifest = await readManifest(entry);
        expected = new Map(manifest.artifacts.map((a) => [a.name, a]));
        continue;
      }
      // The identity, when there is one, comes right after the manifest: the bundle is decided
      // on before a byte of any artifact is read.
      if (!decided) {
        decided = true;
        if (entry.header.name === IDENTITY_ENTRY) {
          identity = parseIdentity(await readSmall(entry, MAX_IDENTITY_BYTES), manifest);
          onManifest(manifest, identity);
          continue;
        }
        onManifest(manifest, null);
      }
      if (entry.header.name === IDENTITY_ENTRY) throw new BundleError(IDENTITY_ENTRY, `must directly follow ${MANIFEST_ENTRY}, once`);
      const artifact = checkArtifactEntry(entry.header, expected, seen, limits.maxArtifactBytes);
      seen.add(artifact.name);
      // tar-stream yields each entry's bytes as Buffers.
      await storeArtifact(entry as AsyncIterable<Buffer>, artifact, blobs, ledger);
    }
    await feeding;
    if (!manifest) throw new BundleError(null, `is empty; ${MANIFEST_ENTRY} must be its first entry`);
    for (const left of manifest.artifacts.filter((a) => !seen.has(a.name))) {
      // A pull leaves out the blobs this server already has (export's `omit`): they must be here.
      blobs.claim(left.sha256);
      ledger.claimed.push(left.sha256);
      if (!(await blobs.has(left.sha256))) throw new BundleError(left.name, "listed in manifest.json but neither in the bundle nor in this server's blob store");
    }
    return { manifest, identity };
  } catch (err) {
    extract.destroy();
    await feeding.catch(() => undefined);
    throw asBundleError(err);
  }
}

/** Problems of our own (rules, disk) pass through; anything else is the stream or the tar format. */
function asBundleError(err: unknown): unknown {
  if (err instanceof CmdbError || (err as NodeJS.ErrnoException).syscall) return err;
  return new BundleError(null, `could not be read: ${(err as Error).message ?? String(err)}`);
}

async function readManifest(entry: Entry): Promise<ImageManifest> {
  const { name } = entry.header;
  if (name !== MANIFEST_ENTRY) throw new BundleError(name, `${MANIFEST_ENTRY} must be the first entry of the bundle`);
  const bytes = await readSmall(entry, MAX_MANIFEST_BYTES);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new BundleError(name, `invalid JSON (${(err as Error).message})`);
  }
  const problems = manifestProblems(value);
  if (problems.length > 0) throw new BundleError(name, problems.join('; '));
  return value as ImageManifest;
}

/** A metadata entry, read whole into memory: a regular file of at most `max` bytes. */
async function readSmall(entry: Entry, max: number): Promise<Buffer> {
  const { name, size = 0 } = entry.header;
  checkRegularFile(entry.header);
  if (size > max) throw new BundleError(name, `${size} bytes is too large (at most ${max})`);
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Hashes one artifact while writing it to a temp file, then links it into the store. A blob
 * the store already holds is only hashed (the bytes must still match), never written twice.
 * `bytes` is a bundle's tar entry, or a blob as a peer node serves it (sync.ts).
 */
export async function storeArtifact(bytes: AsyncIterable<Uint8Array>, artifact: ManifestArtifact, blobs: BlobStore, ledger: ReceiveLedger): Promise<void> {
  blobs.claim(artifact.sha256);
  ledger.claimed.push(artifact.sha256);
  const hash = createHash('sha256');
  let size = 0;
  const temp = (await blobs.has(artifact.sha256)) ? null : blobs.tempPath();
  try {
    const file = temp ? await open(temp, 'wx') : null;
    try {
      for await (const chunk of bytes) {
        hash.update(chunk);
        size += chunk.length;
        if (file) await writeAll(file, chunk);
      }
      await file?.sync();
    } finally {
      await file?.close();
    }
    const digest = hash.digest('hex');
    if (size !== artifact.size) throw new BundleError(artifact.name, `size mismatch (manifest ${artifact.size} bytes, got ${size})`);
    if (digest !== artifact.sha256) {
      throw new BundleError(artifact.name, `sha256 mismatch (manifest ${artifact.sha256.slice(0, 12)}…, got ${digest.slice(0, 12)}…)`);
    }
    if (temp && (await blobs.commit(temp, digest))) ledger.created.push(digest);
  } catch (err) {
    if (temp) await rm(temp, { force: true });
    throw err;
  }
}

async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Passes bytes through until more than `max` have gone by, then fails the stream. */
function byteLimit(max: number): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      if (total > max) callback(new BundleError(null, `larger than catalog.maxBundleBytes (${max} bytes)`));
      else callback(null, chunk);
    },
  });
}
