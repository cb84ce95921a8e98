import type { Worker } from 'node:worker_threads';
import { startThread } from '../thread.js';
import type { BatchOutcome, BatchWriter, WriteOp } from './store.js';
import type { CmdbTarget } from './target.js';
import { packWrites } from './writes.js';
import { PgError } from './postgres/sync-pg.js';

const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './writer-thread.ts' : './writer-thread.js', import.meta.url);

/**
 * A batch as it crosses to the thread: the WriteBatch as JSON text, so that one string is
 * copied rather than every object of it cloned.
 */
export interface WriterRequest {
  id: number;
  batch: string;
}

export interface WriterAnswer {
  id: number;
  /** What the batch registered, when it committed. */
  outcome?: BatchOutcome;
  /** Why the batch was rolled back; absent when it committed. */
  error?: string;
  /** Set when that error came from PostgreSQL or from reaching it: its SQLSTATE or socket code, if it had one. */
  pgError?: { code?: string };
}

/**
 * Least time between two transactions. Each costs a commit, an fsync, a message each way and
 * above all a WAL frame for every page it touched: a DHCP exchange dirties half a dozen pages
 * scattered over the indexes (events by MAC, leases by address and by MAC, the machine), so a
 * transaction of a few exchanges rewrites whole pages for a few rows. Holding a batch for the
 * rest of this window lets many rows share those pages, which cuts the writer's work per
 * exchange most under load (`make bench` measures the DHCP rate). A write after a quiet spell
 * goes at once; under load an ACK waits at most this much longer, which no DHCP client
 * notices (they retransmit after seconds).
 */
const COMMIT_INTERVAL_MS = 20;

interface Waiter {
  resolve: (outcome: BatchOutcome) => void;
  reject: (err: Error) => void;
}

/**
 * Batches of writes committed on a thread of their own, with its own SQLite connection. The
 * DHCP server's event loop then only decides and answers: the statements, the commit and its
 * fsync, which would otherwise take much of its time per exchange, run on another core meanwhile.
 *
 * One transaction is in flight at a time, and they start at least COMMIT_INTERVAL_MS apart.
 * Batches handed over meanwhile wait and then go together as the next transaction: under
 * load, one fsync covers everything that arrived since the previous one (group commit), so
 * the disk's sync rate never caps the packet rate.
 * Batches commit in the order given; each promise settles once its batch is on disk, with what
 * its transaction registered, or rejects if the transaction was rolled back.
 */
export class Writer implements BatchWriter {
  private worker: Worker | null = null;
  private nextId = 1;
  private queued: WriteOp[] = [];
  private queuedWaiters: Waiter[] = [];
  private inFlight: { id: number; waiters: Waiter[] } | null = null;
  private idle: (() => void) | null = null;
  private closed = false;
  /** When the last batch left for the thread, and the timer that sends the next one. */
  private lastSent = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly target: CmdbTarget) {
    if (target.engine === 'sqlite' && target.path === ':memory:') throw new Error('the writer thread needs a database file: an in-memory database is private to its connection');
  }

  commit(ops: WriteOp[]): Promise<BatchOutcome> {
    // A batch after close() would start a new thread that nothing ends, keeping the process alive.
    if (this.closed) return Promise.reject(new Error('CMDB writer is closed: the write was not made'));
    return new Promise<BatchOutcome>((resolve, reject) => {
      for (const op of ops) this.queued.push(op);
      this.queuedWaiters.push({ resolve, reject });
      if (!this.inFlight) this.sendSoon();
    });
  }

  /** Lets everything handed over commit, then ends the thread. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.send();
    }
    if (this.inFlight) await new Promise<void>((resolve) => (this.idle = resolve));
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close');
    await exited;
  }

  private sendSoon(): void {
    if (this.timer) return;
    const wait = this.lastSent + COMMIT_INTERVAL_MS - performance.now();
    if (wait <= 0) return this.send();
    // Node's timers run on the loop's cached millisecond clock and may fire a little early:
    // check again rather than start a transaction inside the window.
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sendSoon();
    }, Math.ceil(wait));
  }

  private send(): void {
    this.lastSent = performance.now();
    const worker = (this.worker ??= this.start());
    const id = this.nextId++;
    this.inFlight = { id, waiters: this.queuedWaiters };
    worker.postMessage({ id, batch: JSON.stringify(packWrites(this.queued)) } satisfies WriterRequest);
    this.queued = [];
    this.queuedWaiters = [];
  }

  private settled(result: BatchOutcome | Error): void {
    const done = this.inFlight!;
    this.inFlight = null;
    for (const w of done.waiters) result instanceof Error ? w.reject(result) : w.resolve(result);
    if (this.queuedWaiters.length > 0) this.sendSoon();
    else this.idle?.();
  }

  private start(): Worker {
    const worker = startThread(ENTRY, { target: this.target });
    worker.on('message', (a: WriterAnswer) => {
      if (a.id !== this.inFlight?.id) return;
      this.settled(a.outcome ?? rolledBack(a));
    });
    // A thread that dies takes its transaction with it: fail that batch; the next starts a new thread.
    const died = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      if (this.inFlight) this.settled(err);
    };
    worker.on('error', (err) => died(new Error(`CMDB writer thread failed: ${err.message}`)));
    worker.on('exit', (code) => died(new Error(`CMDB writer thread exited (code ${code})`)));
    return worker;
  }
}

/** A failed batch's error on this side, still a PgError when it was one (so callers can tell an outage from a bad write). */
function rolledBack(a: WriterAnswer): Error {
  const message = `CMDB write failed and was rolled back: ${a.error}`;
  return a.pgError ? new PgError({ message, code: a.pgError.code }) : new Error(message);
}
