import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { ImageManifest, ManifestArtifact } from '../catalog/manifest.js';

/** Size and sha256 of a file, read as a stream. */
export async function describeArtifact(path: string, role: ManifestArtifact['role']): Promise<ManifestArtifact> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return { name: basename(path), role, size: statSync(path).size, sha256: hash.digest('hex') };
}

/**
 * Writes the bundle tar: manifest.json first (so a reader learns what follows before any
 * large file), then each artifact at top level under its manifest name, mode 0644, owner root,
 * mtime the build epoch. Artifacts are streamed from disk, never held in memory.
 */
export async function writeBundle(outPath: string, manifest: ImageManifest, artifactPaths: Map<string, string>, epoch: number): Promise<void> {
  const pack = tar.pack();
  const file = createWriteStream(outPath);
  // The file is opened asynchronously: a failure before that open completes must still wait
  // for it, or the caller's cleanup runs first and the file appears afterwards.
  const closed = new Promise<void>((resolve) => file.once('close', () => resolve()));
  const written = pipeline(pack, file);
  const header = (name: string, size: number) => ({ name, size, mode: 0o644, mtime: new Date(epoch * 1000), uid: 0, gid: 0, uname: 'root', gname: 'root', type: 'file' as const });
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  try {
    await new Promise<void>((resolve, reject) => pack.entry(header('manifest.json', manifestBytes.length), manifestBytes, (err) => (err ? reject(err) : resolve())));
    for (const artifact of manifest.artifacts) {
      const path = artifactPaths.get(artifact.name);
      if (path === undefined) throw new Error(`no file for artifact ${artifact.name}`);
      await pipeline(createReadStream(path), pack.entry(header(artifact.name, artifact.size)));
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => {});
    await closed;
    throw err;
  }
  await written;
}
