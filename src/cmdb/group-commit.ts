/**
 * Group commit for small writes that arrive from many concurrent requests (boot events, last-seen
 * stamps, discovered machines). With synchronous=FULL every transaction costs an fsync, which
 * is most of what a boot step costs when a rack boots at once; here every write queued during
 * one turn of the event loop lands in one transaction, and each caller's promise settles once
 * its own write is on disk, so a reply sent after `await` never reports an unwritten step.
 */
export class GroupCommit {
  private queue: { write: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];

  constructor(private readonly tx: (fn: () => void) => void) {}

  /** Runs `write` in the next shared transaction; resolves with its result once committed. */
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
    try {
      this.tx(() => {
        results.length = 0;
        for (const item of batch) results.push(item.write());
      });
      batch.forEach((item, i) => item.resolve(results[i]));
    } catch {
      // One bad write must not fail its neighbours: redo each alone, so only it is rejected.
      for (const item of batch) {
        try {
          let result: unknown;
          this.tx(() => void (result = item.write()));
          item.resolve(result);
        } catch (err) {
          item.reject(err);
        }
      }
    }
  }
}
