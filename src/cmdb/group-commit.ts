import type { Committed } from './wal-sync.js';

interface Queued {
  write: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** How a batch is committed: `patient` waits out another writer's lock (SQLite's busy_timeout), blocking the thread. */
export type CommitFn = (fn: () => void, patient: boolean) => Committed<void>;

/**
 * While another connection holds the write lock (an operator's bulk import), a batch is tried
 * again this often, off the event loop, until GIVE_UP_MS have passed; the process meanwhile
 * serves reads and other requests. Only a lock held longer than that fails the batch.
 */
const RETRY_MS = 20;
const GIVE_UP_MS = 120_000;

/** SQLite's busy error, or the PostgreSQL engine's when its write lock was not free (postgres/cmdb.ts). */
const isLocked = (err: unknown) => ['SQLITE_BUSY', 'CMDB_BUSY'].includes((err as { code?: string }).code ?? '');

/**
 * Group commit for small writes that arrive from many concurrent requests (boot events, last-seen
 * stamps, discovered machines). Every write queued during one turn of the event loop lands in
 * one transaction, and each caller's promise settles once its own write is on disk, so a reply
 * sent after `await` never reports an unwritten step.
 */
export class GroupCommit {
  private queue: Queued[] = [];
  /** The retry timer while the write lock is held elsewhere; writes queued meanwhile join it. */
  private retry: NodeJS.Timeout | null = null;
  private lockedSince: number | null = null;

  constructor(private readonly commit: CommitFn) {}

  /** Runs `write` in the next shared transaction; resolves with its result once it is durable. */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.queue.length === 0 && !this.retry) setImmediate(() => this.flush());
      this.queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  /** Commits whatever is queued now; `final` (on close) waits for the lock here, so nothing queued is lost. */
  flush(final = false): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const results: unknown[] = [];
    let committed: Committed<void>;
    try {
      committed = this.commit(() => {
        results.length = 0;
        for (const item of batch) results.push(item.write());
      }, final);
    } catch (err) {
      if (isLocked(err) && !final && Date.now() - (this.lockedSince ??= Date.now()) < GIVE_UP_MS) {
        this.queue = batch.concat(this.queue);
        this.retry = setTimeout(() => this.flush(), RETRY_MS);
        return;
      }
      this.lockedSince = null;
      // Nobody's write is at fault when the lock never came: every caller learns why.
      if (isLocked(err)) return batch.forEach((item) => item.reject(err));
      // One bad write must not fail its neighbours: redo each alone, so only it is rejected.
      for (const item of batch) this.commitAlone(item);
      return;
    }
    this.lockedSince = null;
    committed.durable.then(
      () => batch.forEach((item, i) => item.resolve(results[i])),
      (err: unknown) => batch.forEach((item) => item.reject(err)),
    );
  }

  private commitAlone(item: Queued): void {
    let result: unknown;
    let committed: Committed<void>;
    try {
      committed = this.commit(() => void (result = item.write()), true);
    } catch (err) {
      return item.reject(err);
    }
    committed.durable.then(() => item.resolve(result), item.reject);
  }
}
