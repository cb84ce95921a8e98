import { closeSync, fdatasync, openSync } from 'node:fs';
import type { Db } from './db.js';

/** A transaction's result now, and a promise that settles once the transaction is on disk. */
export interface Committed<T> {
  result: T;
  durable: Promise<void>;
}

const IMPATIENT_LOCK_WAIT_MS = 10;

/**
 * Commits whose fsync does not stall the event loop, for the writes Cmdb.soon() groups (boot
 * events from HTTP and TFTP). synchronous=FULL makes SQLite fsync the write-ahead log inside
 * COMMIT, on the calling thread, and the event loop serves no request while the disk syncs;
 * a process answering a boot storm would spend much of it waiting. Here the transaction runs with
 * synchronous=NORMAL (in WAL mode: appended to the log, not yet synced) and the log is then
 * fdatasync'ed on libuv's thread pool. `durable` settles once the transaction would survive
 * power loss, the promise synchronous=FULL makes, while the loop goes on reading packets.
 * Commits made during one sync ride on the next: a group commit without waiting to form one.
 */
export class WalSync {
  /** A descriptor of the -wal file, opened at the first commit (the file exists from then on). */
  private fd: number | null = null;
  /** Syncs in flight: close() leaves the descriptor to the last of them. */
  private syncing = 0;
  private closing = false;
  private readonly wal: boolean;

  constructor(private readonly db: Db) {
    this.wal = db.pragma('journal_mode', { simple: true }) === 'wal';
  }

  /**
   * Runs fn in one write transaction now (throwing if it fails); see Committed. Unless
   * `patient`, it waits at most IMPATIENT_LOCK_WAIT_MS for another connection's write lock
   * (then throws SQLITE_BUSY), so that the caller can wait for it without blocking its thread.
   */
  commit<T>(fn: () => T, patient = true): Committed<T> {
    const busyTimeout = this.db.pragma('busy_timeout', { simple: true }) as number;
    if (!patient) this.db.pragma(`busy_timeout = ${IMPATIENT_LOCK_WAIT_MS}`);
    try {
      if (!this.wal) return { result: this.db.transaction(fn).immediate(), durable: Promise.resolve() };
      let result: T;
      this.db.pragma('synchronous = NORMAL');
      try {
        result = this.db.transaction(fn).immediate();
      } finally {
        this.db.pragma('synchronous = FULL');
      }
      return { result, durable: this.sync() };
    } finally {
      if (!patient) this.db.pragma(`busy_timeout = ${busyTimeout}`);
    }
  }

  /** fsync on Linux flushes the file's pages whichever descriptor wrote them. */
  private sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        this.fd ??= openSync(`${this.db.name}-wal`, 'r');
      } catch (err) {
        return reject(err);
      }
      this.syncing++;
      fdatasync(this.fd, (err) => {
        if (--this.syncing === 0 && this.closing) this.close();
        if (err) reject(err);
        else resolve();
      });
    });
  }

  close(): void {
    this.closing = true;
    if (this.syncing > 0 || this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }
}
