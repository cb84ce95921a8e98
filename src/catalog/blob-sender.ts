import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/**
 * Streams bytes [start, end] of an open file to a writable (an HTTP response over TLS: plain TCP
 * goes by sendfile, see file-sender.ts), each chunk read and then written straight away, through
 * a small set of recycled buffers.
 *
 * Without sendfile every byte is copied twice: page cache → buffer (read), buffer →
 * socket (write). What those copies cost depends on where the buffer is when the second one
 * runs. bench/http-artifacts.ts, 64 concurrent streams of a 1 GiB file:
 *  - fs read streams (a fresh buffer per chunk): V8's collector was the largest cost;
 *  - recycled 1 MiB buffers read on the thread pool: 0.74–0.86 CPU s/GB, nearly all in the
 *    kernel, as 128 MiB of buffers in flight left each one out of the CPU caches by the time
 *    it was written, and every chunk crossed to a pool thread and back;
 *  - reads on the event loop (readSync) in 128 KiB chunks: 0.39–0.41 CPU s/GB, 0.9–1.1 × nginx.
 * One stream alone prefers large chunks (fewer calls, and its two buffers stay in cache), so
 * the chunk shrinks as transfers in this process multiply (see chunkBytes).
 *
 * Reading on the event loop means a read of a file not in the page cache waits for the disk
 * with the loop stopped, as nginx's default (sendfile, no aio) does too. Boot artifacts are
 * a handful of files every machine fetches, so they live in the page cache; the first read
 * of a new image pays the disk once.
 *
 * A buffer goes back to the pool only when its write has completed (the write callback), so
 * no buffer is reused while the socket may still need it.
 */
const MAX_CHUNK = 1024 * 1024;
const MIN_CHUNK = 128 * 1024;
/** Bytes in flight that this process aims for across all its transfers (two buffers each). */
const IN_FLIGHT_BUDGET = 4 * 1024 * 1024;
/** Buffers per transfer: one being written while the next is read. */
const PER_TRANSFER = 2;
/** Idle buffers kept per chunk size for the next transfers; beyond this they are left to the collector. */
const POOL_LIMIT = 128;

/**
 * Bytes this process's transfers write in one turn of the event loop. While a socket takes each
 * chunk at once, a write's callback and the next read and write run as microtasks, which never
 * give the loop back: in a boot storm hundreds of transfers then kept a worker from reading any
 * other request, boot scripts included. So a transfer takes its chunk from this budget before
 * it reads (checked after the write, every transfer woken in a turn would still write one),
 * and once the turn's budget is spent it queues; each turn serves the queue in order until the
 * budget is spent again. A turn stays at a millisecond or so of copying however many transfers
 * run, and the new connections the cluster's primary hands over, one per worker per turn at
 * most, keep coming: the more turns a second, the sooner a script's connection reaches its
 * worker. The budget still holds two of the largest chunks, so one stream alone is not slowed
 * to a chunk per turn.
 */
export const TURN_BYTES = 2 * 1024 * 1024;
let spentThisTurn = 0;
let turnScheduled = false;
const queued: { bytes: number; go: () => void }[] = [];

/** Null when `bytes` fit in this turn's budget (now spent from it), else a promise of a later turn that has them. */
function turnBudget(bytes: number): Promise<void> | null {
  if (!turnScheduled) {
    turnScheduled = true;
    setImmediate(nextTurn);
  }
  if (queued.length === 0 && spentThisTurn < TURN_BYTES) {
    spentThisTurn += bytes;
    return null;
  }
  return new Promise<void>((go) => queued.push({ bytes, go }));
}

function nextTurn(): void {
  spentThisTurn = 0;
  turnScheduled = false;
  while (queued.length > 0 && spentThisTurn < TURN_BYTES) {
    const next = queued.shift()!;
    spentThisTurn += next.bytes;
    next.go();
  }
  if (queued.length > 0) {
    turnScheduled = true;
    setImmediate(nextTurn);
  }
}

const pools = new Map<number, Buffer[]>();
let transfers = 0;

/** A power of two between MIN_CHUNK and MAX_CHUNK (so pools stay few), smaller as transfers multiply. */
function chunkBytes(active: number): number {
  let size = MAX_CHUNK;
  while (size > MIN_CHUNK && size * PER_TRANSFER * active > IN_FLIGHT_BUDGET) size /= 2;
  return size;
}

export async function copyFileRange(file: FileHandle, out: Writable, start: number, end: number): Promise<void> {
  const size = chunkBytes(++transfers);
  const pool = pools.get(size) ?? pools.set(size, []).get(size)!;
  const idle: Buffer[] = [];
  for (let i = 0; i < PER_TRANSFER; i++) idle.push(pool.pop() ?? Buffer.allocUnsafeSlow(size));
  let inFlight = 0;
  let closed = false;
  let wake: (() => void) | null = null;
  const returned = (buffer: Buffer) => {
    inFlight--;
    idle.push(buffer);
    wake?.();
  };
  const onClose = () => {
    closed = true;
    wake?.();
  };
  const nextEvent = () => new Promise<void>((resolve) => (wake = resolve));
  out.once('close', onClose);
  try {
    for (let position = start; position <= end; ) {
      while (idle.length === 0 && !closed) await nextEvent();
      const bytes = Math.min(size, end - position + 1);
      const later = turnBudget(bytes);
      if (later !== null) await later;
      if (closed || out.destroyed) return;
      const buffer = idle.pop()!;
      const bytesRead = readSync(file.fd, buffer, 0, bytes, position);
      if (bytesRead === 0) throw new Error(`file ended at byte ${position}, before ${end + 1}`);
      position += bytesRead;
      inFlight++;
      out.write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead), () => returned(buffer));
    }
    out.end();
    while (inFlight > 0 && !closed) await nextEvent();
  } finally {
    transfers--;
    out.off('close', onClose);
    // A buffer still queued on a closed connection is left to the collector, never reused.
    if (inFlight === 0) for (const b of idle) if (pool.length < POOL_LIMIT) pool.push(b);
  }
}
