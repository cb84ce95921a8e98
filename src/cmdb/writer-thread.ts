/**
 * The writer thread's entry (see writer.ts): its own connection to the CMDB file, one
 * transaction per batch, committed with synchronous=FULL (the fsync happens here, off the
 * DHCP server's event loop), then the answer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openCmdbAt } from './open.js';
import { PgError } from './postgres/sync-pg.js';
import type { SqlCmdb } from './sql-cmdb.js';
import type { BatchOutcome } from './store.js';
import type { CmdbTarget } from './target.js';
import type { WriterAnswer, WriterRequest } from './writer.js';
import { applyWriteBatch, RACED, type WriteBatch } from './writes.js';

/**
 * How long a batch keeps retrying while another connection holds the write lock past SQLite's
 * busy_timeout (an operator's bulk import): the batch holds ACKed leases, so it waits rather
 * than being lost. Only a lock held longer than this fails it.
 */
const LOCKED_GIVE_UP_MS = 120_000;
/**
 * Failures after which the same batch, run again, can commit: SQLite busy past its timeout;
 * on PostgreSQL, where nodes' batches run side by side, a deadlock (40P01) or serialization
 * failure (40001) PostgreSQL broke by rolling this one back, or a holder that left between
 * a refused claim and its read (writes.ts).
 */
const RETRYABLE = new Set(['SQLITE_BUSY', '40P01', '40001', RACED]);
const RETRY_PAUSE_MS = 10;

const port = parentPort!;
const target = (workerData as { target: CmdbTarget }).target;
/**
 * Opened by the first batch, and again by the next one after opening failed: a database that
 * cannot be reached fails the batches that come meanwhile (as PgErrors, which the DHCP server
 * tells from bad writes) rather than the thread.
 */
let cmdb: SqlCmdb | null = null;
const pause = new Int32Array(new SharedArrayBuffer(4));

function applyDespiteLock(batch: WriteBatch): BatchOutcome {
  const started = Date.now();
  cmdb ??= openCmdbAt(target);
  for (;;) {
    try {
      return applyWriteBatch(cmdb, batch);
    } catch (err) {
      if (!RETRYABLE.has((err as { code?: string }).code ?? '') || Date.now() - started > LOCKED_GIVE_UP_MS) throw err;
      // The transaction was rolled back whole; this thread has nothing else to do meanwhile.
      Atomics.wait(pause, 0, 0, RETRY_PAUSE_MS);
    }
  }
}

port.on('message', (m: WriterRequest | 'close') => {
  if (m === 'close') {
    cmdb?.close();
    port.close();
    return;
  }
  let answer: WriterAnswer;
  try {
    answer = { id: m.id, outcome: applyDespiteLock(JSON.parse(m.batch) as WriteBatch) };
  } catch (err) {
    answer = { id: m.id, error: err instanceof Error ? err.message : String(err), pgError: err instanceof PgError ? { code: err.code } : undefined };
  }
  port.postMessage(answer);
});
