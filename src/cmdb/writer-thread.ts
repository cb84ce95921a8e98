/**
 * The writer thread's entry (see writer.ts): its own connection to the CMDB file, one
 * transaction per batch, committed with synchronous=FULL (the fsync happens here, off the
 * DHCP server's event loop), then the answer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openCmdbAt } from './open.js';
import type { BatchOutcome } from './store.js';
import type { CmdbTarget } from './target.js';
import type { WriterAnswer, WriterRequest } from './writer.js';
import { applyWriteBatch, type WriteBatch } from './writes.js';

/**
 * How long a batch keeps retrying while another connection holds the write lock past SQLite's
 * busy_timeout (an operator's bulk import): the batch holds ACKed leases, so it waits rather
 * than being lost. Only a lock held longer than this fails it.
 */
const LOCKED_GIVE_UP_MS = 120_000;
const RETRY_PAUSE_MS = 10;

const port = parentPort!;
const cmdb = openCmdbAt((workerData as { target: CmdbTarget }).target);
const pause = new Int32Array(new SharedArrayBuffer(4));

function applyDespiteLock(batch: WriteBatch): BatchOutcome {
  const started = Date.now();
  for (;;) {
    try {
      return applyWriteBatch(cmdb, batch);
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() - started > LOCKED_GIVE_UP_MS) throw err;
      // The transaction was rolled back whole; this thread has nothing else to do meanwhile.
      Atomics.wait(pause, 0, 0, RETRY_PAUSE_MS);
    }
  }
}

port.on('message', (m: WriterRequest | 'close') => {
  if (m === 'close') {
    cmdb.close();
    port.close();
    return;
  }
  let answer: WriterAnswer;
  try {
    answer = { id: m.id, outcome: applyDespiteLock(JSON.parse(m.batch) as WriteBatch) };
  } catch (err) {
    answer = { id: m.id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(answer);
});
