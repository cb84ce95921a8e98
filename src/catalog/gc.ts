import { rmSync } from 'node:fs';
import type { Cmdb } from '../cmdb/index.js';
import type { BlobStore } from './blob-store.js';

/** Temp files older than this belong to no running publish (a publish crashed mid-way). */
export const STALE_TEMP_MS = 60 * 60 * 1000;

export interface GcReport {
  blobs: number;
  bytes: number;
  tempFiles: number;
  tempBytes: number;
}

/**
 * Deletes blobs that no image lists and no publish in this process is still writing, plus temp
 * files last modified before tempCutoffMs. The deletions run inside a write transaction, so a publish in another
 * process cannot insert an image naming a blob between the check and the unlink (its own
 * final check, in its transaction, then sees the blob gone and fails cleanly).
 */
export async function collectGarbage(cmdb: Cmdb, blobs: BlobStore, tempCutoffMs = Date.now() - STALE_TEMP_MS): Promise<GcReport> {
  const temps = await blobs.removeStaleTemps(tempCutoffMs);
  const onDisk: [string, number][] = [];
  for await (const blob of blobs.list()) onDisk.push(blob);
  const { count, bytes } = cmdb.tx(() => {
    const inUse = cmdb.images.blobsInUse();
    let count = 0;
    let bytes = 0;
    for (const [sha256, size] of onDisk) {
      if (inUse.has(sha256) || blobs.isClaimed(sha256)) continue;
      rmSync(blobs.path(sha256), { force: true });
      count++;
      bytes += size;
    }
    return { count, bytes };
  });
  return { blobs: count, bytes, tempFiles: temps.count, tempBytes: temps.bytes };
}

/**
 * At start nothing is being published (the server holds its data dir alone), so every temp file
 * and every blob no image lists is debris of a publish cut off by a crash: all of it goes.
 */
export function removeCrashDebris(cmdb: Cmdb, blobs: BlobStore): Promise<GcReport> {
  return collectGarbage(cmdb, blobs, Date.now() + 1);
}
