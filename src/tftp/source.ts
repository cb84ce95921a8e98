import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** What a request resolved to, before the transfer options (and so the read-ahead) are known. */
export type Content = { kind: 'buffer'; data: Buffer } | { kind: 'file'; handle: FileHandle; size: number };

export type OpenRefusal = 'not-found' | 'not-a-file' | 'unreadable';

/**
 * Opens a regular file for reading. O_NONBLOCK keeps a FIFO or device planted in the tree from
 * parking a libuv worker in open(2); anything that is not a regular file is then refused.
 */
export async function openRegularFile(path: string): Promise<{ ok: true; content: Content } | { ok: false; reason: OpenRefusal }> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' || code === 'ENOTDIR' ? 'not-found' : 'unreadable' };
  }
  try {
    const stat = await handle.stat();
    if (stat.isFile()) return { ok: true, content: { kind: 'file', handle, size: stat.size } };
  } catch {
    // Falls through to closing the handle: an unstat-able file is as unusable as a directory.
  }
  await handle.close();
  return { ok: false, reason: 'not-a-file' };
}

export function contentSize(content: Content): number {
  return content.kind === 'buffer' ? content.data.length : content.size;
}

export function closeContent(content: Content): Promise<void> {
  return content.kind === 'file' ? content.handle.close() : Promise.resolve();
}

const READ_AHEAD_MIN = 64 * 1024;
const READ_AHEAD_MAX = 1024 * 1024;

/**
 * How much a file transfer reads at a time: about one window, in whole blocks (so reads split at
 * block boundaries), at least 64 KiB so small windows still read in bulk, and at most 1 MiB so
 * hundreds of concurrent transfers stay affordable.
 */
export function readAheadBytes(blksize: number, windowsize: number): number {
  const blocks = Math.min(Math.max(windowsize, Math.ceil(READ_AHEAD_MIN / blksize)), Math.max(1, Math.floor(READ_AHEAD_MAX / blksize)));
  return blocks * blksize;
}
