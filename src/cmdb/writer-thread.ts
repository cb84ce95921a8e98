/**
 * The writer thread's entry (see writer.ts): its own connection to the CMDB file, one
 * transaction per batch, committed with synchronous=FULL (the fsync happens here, off the
 * DHCP server's event loop), then the answer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openCmdb } from './index.js';
import { applyWriteBatch, type BatchOutcome, type WriteBatch } from './writes.js';

export interface WriterRequest {
  id: number;
  batch: WriteBatch;
}

export interface WriterAnswer {
  id: number;
  /** What the batch registered, when it committed. */
  outcome?: BatchOutcome;
  /** Why the batch was rolled back; absent when it committed. */
  error?: string;
}

const port = parentPort!;
const cmdb = openCmdb((workerData as { path: string }).path);
port.on('message', (m: WriterRequest | 'close') => {
  if (m === 'close') {
    cmdb.close();
    port.close();
    return;
  }
  let answer: WriterAnswer;
  try {
    answer = { id: m.id, outcome: applyWriteBatch(cmdb, m.batch) };
  } catch (err) {
    answer = { id: m.id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(answer);
});
