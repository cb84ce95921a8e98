import { fstatSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

interface OpenBlob {
  handle: Promise<FileHandle>;
  /** The file once open, for the check that it still has a name. */
  file: FileHandle | null;
  readers: number;
  idle: NodeJS.Timeout | null;
}

/** One reader's use of an open blob file. */
export interface BlobReader {
  file: FileHandle;
  /** Done reading: the file closes a while after its last reader is done. */
  release(): void;
}

/**
 * Blob files held open while transfers read them, shared by those transfers and closed a few
 * seconds after the last one ends. In a boot storm a thousand machines fetch the same three
 * files, and an open and a close per fetch (two trips to the thread pool) cost a worker's loop
 * more than routing the request. A file that has lost its name (the image was deleted and
 * collected, perhaps by another process) is not handed out again: the next reader opens the
 * path afresh, and finds it gone or published anew.
 */
export class OpenBlobs {
  private readonly files = new Map<string, OpenBlob>();

  constructor(private readonly idleMs = 5_000) {}

  /** The open file at `path` (rejects as open() does). */
  async acquire(path: string): Promise<BlobReader> {
    let blob = this.files.get(path);
    if (blob?.file && fstatSync(blob.file.fd).nlink === 0) {
      this.files.delete(path);
      if (blob.readers === 0) void this.closeNow(blob);
      blob = undefined;
    }
    if (!blob) {
      const opened: OpenBlob = { handle: open(path, 'r'), file: null, readers: 0, idle: null };
      opened.handle.then(
        (file) => (opened.file = file),
        // A failed open is not kept: the next reader tries again.
        () => this.files.get(path) === opened && this.files.delete(path),
      );
      this.files.set(path, (blob = opened));
    }
    const mine = blob;
    mine.readers++;
    if (mine.idle) clearTimeout(mine.idle);
    mine.idle = null;
    let file: FileHandle;
    try {
      file = await mine.handle;
    } catch (err) {
      mine.readers--;
      throw err;
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--mine.readers > 0) return;
      if (this.files.get(path) !== mine) void this.closeNow(mine);
      else mine.idle = setTimeout(() => this.closeIdle(path, mine), this.idleMs).unref();
    };
    return { file, release };
  }

  /** Files open now (or opening). */
  get size(): number {
    return this.files.size;
  }

  /** Closes every file that no reader holds, at once (the server is stopping). */
  async close(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(all.filter((blob) => blob.readers === 0).map((blob) => this.closeNow(blob)));
  }

  private closeIdle(path: string, blob: OpenBlob): void {
    if (this.files.get(path) !== blob || blob.readers > 0) return;
    this.files.delete(path);
    void this.closeNow(blob);
  }

  private closeNow(blob: OpenBlob): Promise<void> {
    if (blob.idle) clearTimeout(blob.idle);
    blob.idle = null;
    return blob.handle.then((file) => file.close()).catch(() => undefined);
  }
}
