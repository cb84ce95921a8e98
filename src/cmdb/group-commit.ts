import type { Committed } from './wal-sync.js';

interface Queued {
  write: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for small writes that arrive from many concurrent requests (boot events, last-seen
 * stamps, discovered machines). Every write queued during one turn of the event loop lands in
 * one transaction, and each caller's promise settles once its own write is on disk, so a reply
 * sent after `await` never reports an unwritten step.
 */
export class GroupCommit {
  private queue: Queued[] = [];

  constructor(private readonly commit: (fn: () => void) => Committed<void>) {}

  /** Runs `write` in the next shared transaction; resolves with its result once it is durable. */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(() => this.flush());
      this.queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  /** Commits whatever is queued now (also called on close, so nothing queued is lost). */
  flush(): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const results: unknown[] = [];
    let committed: Committed<void>;
    try {
      committed = this.commit(() => {
        results.length = 0;
        for (const item of batch) results.push(item.write());
      });
    } catch {
      // One bad write must not fail its neighbours: redo each alone, so only it is rejected.
      for (const item of batch) this.commitAlone(item);
      return;
    }
    committed.durable.then(
      () => batch.forEach((item, i) => item.resolve(results[i])),
      (err: unknown) => batch.forEach((item) => item.reject(err)),
    );
  }

  private commitAlone(item: Queued): void {
    let result: unknown;
    let committed: Committed<void>;
    try {
      committed = this.commit(() => void (result = item.write()));
    } catch (err) {
      return item.reject(err);
    }
    committed.durable.then(() => item.resolve(result), item.reject);
  }
}
