import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WriteOp } from './writes.js';
import type { WriterAnswer, WriterRequest } from './writer-thread.js';

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = new URL(FROM_SOURCE ? './writer-thread.ts' : './writer-thread.js', import.meta.url);

/** The thread. Run from source (the tests), its entry is TypeScript: loaded through tsx, as the tests are. */
function startThread(path: string): Worker {
  if (!FROM_SOURCE) return new Worker(ENTRY, { workerData: { path } });
  const boot = `import(${JSON.stringify(tsxEsmApi())}).then((t) => t.register()).then(() => import(${JSON.stringify(ENTRY.href)}))`;
  return new Worker(boot, { eval: true, workerData: { path } });
}

/** tsx's ESM register API by its package's export map (an eval'd thread resolves bare names from the cwd). */
function tsxEsmApi(): string {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const exportsMap = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports;
  return pathToFileURL(join(dirname(manifest), exportsMap['./esm/api']!.import.default)).href;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Batches of writes committed on a thread of their own, with its own SQLite connection. The
 * DHCP server's event loop then only decides and answers: the statements, the commit and its
 * fsync, which were half of its time per exchange, run on another core meanwhile.
 *
 * One transaction is in flight at a time. Batches handed over while it commits wait and then
 * go together as the next transaction: under load, one fsync covers everything that arrived
 * during the previous one (group commit), so the disk's sync rate never caps the packet rate.
 * Batches commit in the order given; each promise settles once its batch is on disk, or
 * rejects if its transaction was rolled back.
 */
export class Writer {
  private worker: Worker | null = null;
  private nextId = 1;
  private queued: WriteOp[] = [];
  private queuedWaiters: Waiter[] = [];
  private inFlight: { id: number; waiters: Waiter[] } | null = null;
  private idle: (() => void) | null = null;
  private closed = false;

  constructor(private readonly path: string) {
    if (path === ':memory:') throw new Error('the writer thread needs a database file: an in-memory database is private to its connection');
  }

  commit(ops: WriteOp[]): Promise<void> {
    // A batch after close() would start a new thread that nothing ends, keeping the process alive.
    if (this.closed) return Promise.reject(new Error('CMDB writer is closed: the write was not made'));
    return new Promise<void>((resolve, reject) => {
      for (const op of ops) this.queued.push(op);
      this.queuedWaiters.push({ resolve, reject });
      if (!this.inFlight) this.send();
    });
  }

  /** Lets everything handed over commit, then ends the thread. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.inFlight) await new Promise<void>((resolve) => (this.idle = resolve));
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close');
    await exited;
  }

  private send(): void {
    const worker = (this.worker ??= this.start());
    const id = this.nextId++;
    this.inFlight = { id, waiters: this.queuedWaiters };
    // As JSON text: the writes are plain data (events are stored as JSON anyway), and one string
    // crosses to the thread for far less than the structured clone of every object in the batch.
    worker.postMessage({ id, ops: JSON.stringify(this.queued) } satisfies WriterRequest);
    this.queued = [];
    this.queuedWaiters = [];
  }

  private settled(error: Error | null): void {
    const done = this.inFlight!;
    this.inFlight = null;
    for (const w of done.waiters) error ? w.reject(error) : w.resolve();
    if (this.queuedWaiters.length > 0) this.send();
    else this.idle?.();
  }

  private start(): Worker {
    const worker = startThread(this.path);
    worker.on('message', (a: WriterAnswer) => {
      if (a.id !== this.inFlight?.id) return;
      this.settled(a.error === undefined ? null : new Error(`CMDB write failed and was rolled back: ${a.error}`));
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
