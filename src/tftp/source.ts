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
 * Streams a file with positional reads into a fresh read-ahead buffer of about one window, so a
 * transfer costs one read(2) per window rather than per block, and never holds the whole file.
 * The size is fixed at open: a file that grows mid-transfer is sent as it was (matching tsize).
 */
class FileSource implements ByteSource {
  private chunk: Buffer = Buffer.alloc(0);
  private at = 0;
  private position = 0;
  private shrunk = false;

  constructor(
    private readonly handle: FileHandle,
    private readonly size: number,
    private readonly readAhead: number,
  ) {}

  take(count: number): Uint8Array | null {
    const atEnd = this.position >= this.size || this.shrunk;
    if (this.chunk.length - this.at < count && !atEnd) return null;
    const end = Math.min(this.at + count, this.chunk.length);
    const view = this.chunk.subarray(this.at, end);
    this.at = end;
    return view;
  }

  async fill(count: number): Promise<void> {
    const leftover = this.chunk.subarray(this.at);
    const wanted = Math.min(Math.max(this.readAhead, count), leftover.length + this.size - this.position);
    const next = Buffer.allocUnsafe(wanted);
    leftover.copy(next);
    let filled = leftover.length;
    while (filled < wanted) {
      const { bytesRead } = await this.handle.read(next, filled, wanted - filled, this.position);
      if (bytesRead === 0) {
        this.shrunk = true; // The file shrank under us; send what there is.
        break;
      }
      filled += bytesRead;
      this.position += bytesRead;
    }
    this.chunk = next.subarray(0, filled);
    this.at = 0;
  }

  close(): Promise<void> {
    return this.handle.close();
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
