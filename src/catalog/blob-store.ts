import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Content-addressed files: `<root>/sha256/<first two hex>/<hex>`. A blob is written once under
 * tmp/ (same filesystem), fsynced, and hard-linked into place; link() refuses an existing name,
 * so "did this write create the blob?" is answered atomically even with concurrent writers.
 */
export class BlobStore {
  readonly tmpDir: string;
  private readonly shaDir: string;
  // Blobs that an unfinished publish in this process has written or counts on: cleanup and gc
  // leave them alone until that publish has either inserted its image or given up.
  private readonly claims = new Map<string, number>();

  constructor(readonly root: string) {
    this.shaDir = join(root, 'sha256');
    this.tmpDir = join(root, 'tmp');
    mkdirSync(this.shaDir, { recursive: true });
    mkdirSync(this.tmpDir, { recursive: true });
  }

  path(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.shaDir, sha256.slice(0, 2), sha256);
  }

  /** A fresh temp file name (not yet created). */
  tempPath(): string {
    return join(this.tmpDir, `${randomUUID()}.part`);
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.path(sha256)).then(
      () => true,
      () => false,
    );
  }

  /**
   * Moves a finished, fsynced temp file into place under its hash and removes the temp name.
   * Returns true when this call created the blob, false when it was already there.
   */
  async commit(tempPath: string, sha256: string): Promise<boolean> {
    const target = this.path(sha256);
    const shard = join(this.shaDir, sha256.slice(0, 2));
    const newShard = (await mkdir(shard, { recursive: true })) !== undefined;
    let created = true;
    try {
      await link(tempPath, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      created = false;
    }
    await unlink(tempPath);
    // The new directory entries must reach the disk before the image row says the blob exists.
    if (created) await fsyncDir(shard);
    if (newShard) await fsyncDir(this.shaDir);
    return created;
  }

  async remove(sha256: string): Promise<number> {
    const path = this.path(sha256);
    const size = await stat(path).then(
      (s) => s.size,
      () => 0,
    );
    await rm(path, { force: true });
    return size;
  }

  /** Every blob on disk as [sha256, bytes]. */
  async *list(): AsyncGenerator<[string, number]> {
    for (const shard of await readdir(this.shaDir)) {
      for (const name of await readdir(join(this.shaDir, shard)).catch(() => [] as string[])) {
        if (!SHA256.test(name)) continue;
        const size = await stat(join(this.shaDir, shard, name)).then(
          (s) => s.size,
          () => null,
        );
        if (size !== null) yield [name, size];
      }
    }
  }

  /** Removes temp files last modified before the cutoff (left by a crash); returns count and bytes. */
  async removeStaleTemps(olderThanMs: number): Promise<{ count: number; bytes: number }> {
    let count = 0;
    let bytes = 0;
    for (const name of await readdir(this.tmpDir)) {
      const path = join(this.tmpDir, name);
      const s = await stat(path).catch(() => null);
      if (!s || s.mtimeMs >= olderThanMs) continue;
      await rm(path, { force: true, recursive: true });
      count++;
      bytes += s.size;
    }
    return { count, bytes };
  }

  claim(sha256: string): void {
    this.claims.set(sha256, (this.claims.get(sha256) ?? 0) + 1);
  }

  release(sha256: string): void {
    const n = (this.claims.get(sha256) ?? 0) - 1;
    if (n > 0) this.claims.set(sha256, n);
    else this.claims.delete(sha256);
  }

  isClaimed(sha256: string): boolean {
    return this.claims.has(sha256);
  }
}

async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
