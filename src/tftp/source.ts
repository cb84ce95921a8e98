import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { toNetascii } from './netascii.js';

/**
 * The bytes of one transfer, consumed front to back exactly once. Taking is synchronous so the
 * per-block path of a transfer never waits on a promise; only an empty buffer costs an await.
 */
export interface ByteSource {
  /**
   * The next `count` bytes (fewer only at the end), or null when fill() has to run first. The
   * returned view is never overwritten, so a caller may hold it as long as it likes.
   */
  take(count: number): Uint8Array | null;
  /** Makes the next take(count) succeed. */
  fill(count: number): Promise<void>;
  close(): Promise<void>;
}

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

/** Wraps resolved content as the byte stream a transfer sends, converting to netascii if asked. */
export function sourceFor(content: Content, netascii: boolean, readAhead: number): ByteSource {
  const raw = content.kind === 'buffer' ? new BufferSource(content.data) : new FileSource(content.handle, content.size, readAhead);
  return netascii ? new NetasciiSource(raw, readAhead) : raw;
}

class BufferSource implements ByteSource {
  private at = 0;
  constructor(private readonly data: Buffer) {}

  take(count: number): Uint8Array {
    const view = this.data.subarray(this.at, this.at + count);
    this.at += view.length;
    return view;
  }

  async fill(): Promise<void> {}

  async close(): Promise<void> {}
}

/**
 * Streams a file with positional reads of about one window each, so a transfer costs one read(2)
 * per window rather than per block and never holds the whole file. The next read starts as soon
 * as half the current chunk is taken, so it is usually in memory before the transfer needs it.
 * The size is fixed at open: a file that grows mid-transfer is sent as it was (matching tsize).
 */
class FileSource implements ByteSource {
  private chunk: Buffer = Buffer.alloc(0);
  private at = 0;
  /** File offset where the next read starts; reads are issued in order, one at a time. */
  private position = 0;
  /** The read after `chunk`, started early. */
  private ahead: Promise<Buffer> | null = null;

  constructor(
    private readonly handle: FileHandle,
    private size: number,
    private readonly readAhead: number,
  ) {}

  take(count: number): Uint8Array | null {
    const allRead = this.position >= this.size && this.ahead === null;
    if (this.chunk.length - this.at < count && !allRead) return null;
    const end = Math.min(this.at + count, this.chunk.length);
    const view = this.chunk.subarray(this.at, end);
    this.at = end;
    this.readAheadIfLow();
    return view;
  }

  async fill(): Promise<void> {
    // Through `ahead` even when nothing was read early, so take() sees a read in flight and
    // answers "not yet" rather than mistaking the already-advanced position for the end.
    this.ahead ??= this.read();
    const next = await this.ahead;
    this.ahead = null;
    const leftover = this.chunk.subarray(this.at);
    this.chunk = leftover.length > 0 ? Buffer.concat([leftover, next]) : next;
    this.at = 0;
    this.readAheadIfLow();
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  private readAheadIfLow(): void {
    if (this.ahead !== null || this.position >= this.size || this.chunk.length - this.at > this.readAhead / 2) return;
    this.ahead = this.read();
    // Handled here so a failure nobody awaits yet is not an unhandled rejection; fill() still sees it.
    this.ahead.catch(() => undefined);
  }

  private async read(): Promise<Buffer> {
    const start = this.position;
    const length = Math.min(this.readAhead, this.size - start);
    this.position += length;
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, start + filled);
      if (bytesRead === 0) {
        // The file shrank under us: end the transfer where the file now ends.
        this.size = this.position = start + filled;
        break;
      }
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  }
}

/** Converts on the fly; the converted length is unknown until the end, which is why netascii gets no tsize. */
class NetasciiSource implements ByteSource {
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(
    private readonly inner: ByteSource,
    private readonly rawChunk: number,
  ) {}

  take(count: number): Uint8Array | null {
    if (this.pending.length < count && !this.ended) return null;
    const view = this.pending.subarray(0, count);
    this.pending = this.pending.subarray(view.length);
    return view;
  }

  async fill(count: number): Promise<void> {
    while (this.pending.length < count && !this.ended) {
      let raw = this.inner.take(this.rawChunk);
      if (raw === null) {
        await this.inner.fill(this.rawChunk);
        raw = this.inner.take(this.rawChunk)!;
      }
      this.ended = raw.length < this.rawChunk;
      this.pending = Buffer.concat([this.pending, toNetascii(raw)]);
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
