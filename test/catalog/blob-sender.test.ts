import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { hashing } from '../../src/backup/hashing.js';
import { copyFileRange, TURN_BYTES } from '../../src/catalog/blob-sender.js';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'livery-blob-sender-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A destination that takes every chunk at once, as a socket with room in its buffer does: it hashes what it gets and passes it on to nothing. */
function eagerSink(): { sink: Writable; result(): { size: number; sha256: string } } {
  const { stream, result } = hashing();
  stream.resume();
  return { sink: stream, result };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('copyFileRange', () => {
  it('gives the event loop back during a transfer the destination takes at once, and sends every byte in order', async () => {
    const content = randomBytes(40 * MiB);
    const path = join(dir, 'blob');
    writeFileSync(path, content);
    const file = await open(path);
    try {
      const { sink, result } = eagerSink();
      // Turns of the event loop that complete while the transfer runs: without yielding, the
      // whole file goes out in microtasks and none does.
      let turns = 0;
      let sending = true;
      const countTurns = () => {
        if (!sending) return;
        turns++;
        setImmediate(countTurns);
      };
      setImmediate(countTurns);
      await copyFileRange(file, sink, 0, content.length - 1);
      sending = false;
      expect(result()).toEqual({ size: content.length, sha256: sha256(content) });
      // At most TURN_BYTES per turn: 40 MiB needs that many turns besides the first.
      expect(turns).toBeGreaterThanOrEqual(40 * MiB / TURN_BYTES - 1);
    } finally {
      await file.close();
    }
  });

  it('bounds the bytes written in one turn of the event loop across all transfers, however many run', async () => {
    const content = randomBytes(MiB);
    const path = join(dir, 'many');
    writeFileSync(path, content);
    const file = await open(path);
    try {
      const sinks = Array.from({ length: 200 }, () => eagerSink());
      let written = 0;
      for (const { sink } of sinks) sink.on('data', (chunk: Buffer) => (written += chunk.length));
      // The most bytes any one turn wrote: each transfer writing one chunk per turn would be 200 × 128 KiB.
      let most = 0;
      let before = 0;
      let sending = true;
      const sample = () => {
        most = Math.max(most, written - before);
        before = written;
        if (sending) setImmediate(sample);
      };
      setImmediate(sample);
      await Promise.all(sinks.map(({ sink }) => copyFileRange(file, sink, 0, content.length - 1)));
      sending = false;
      for (const { result } of sinks) expect(result()).toEqual({ size: content.length, sha256: sha256(content) });
      expect(most).toBeLessThanOrEqual(TURN_BYTES + 128 * 1024);
    } finally {
      await file.close();
    }
  });

  it('sends exactly the range asked for', async () => {
    const content = randomBytes(3 * MiB + 17);
    const path = join(dir, 'range');
    writeFileSync(path, content);
    const file = await open(path);
    try {
      const { sink, result } = eagerSink();
      await copyFileRange(file, sink, 1000, 2 * MiB + 5);
      const expected = content.subarray(1000, 2 * MiB + 6);
      expect(result()).toEqual({ size: expected.length, sha256: sha256(expected) });
    } finally {
      await file.close();
    }
  });
});
