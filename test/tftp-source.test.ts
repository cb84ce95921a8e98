import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toNetascii } from '../src/tftp/netascii.js';
import { openRegularFile, readAheadBytes, sourceFor, type ByteSource, type Content } from '../src/tftp/source.js';
import { tempDir } from './helpers/tmp.js';

const dir = tempDir('livery-tftp-source-');
afterAll(() => dir.cleanup());

/** Reads a source to the end the way a transfer does: take, and fill when take says so. */
async function drain(source: ByteSource, blksize: number): Promise<{ data: Buffer; blocks: number }> {
  const parts: Buffer[] = [];
  for (let blocks = 1; blocks < 1_000_000; blocks++) {
    let block = source.take(blksize);
    if (block === null) {
      await source.fill(blksize);
      block = source.take(blksize);
      if (block === null) throw new Error('take() still empty after fill()');
    }
    parts.push(Buffer.from(block));
    if (block.length < blksize) {
      await source.close();
      return { data: Buffer.concat(parts), blocks };
    }
  }
  throw new Error('source never ended');
}

async function openFile(name: string, data: Buffer): Promise<Content> {
  writeFileSync(join(dir.path, name), data);
  const opened = await openRegularFile(join(dir.path, name));
  if (!opened.ok) throw new Error(opened.reason);
  return opened.content;
}

describe('tftp byte sources', () => {
  it('stream a file in order through read-ahead chunks, for any size, block and chunk', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 40_000 }), fc.integer({ min: 8, max: 3000 }), fc.integer({ min: 1, max: 8 }), async (size, blksize, chunkBlocks) => {
        const data = randomBytes(size);
        const { data: got, blocks } = await drain(sourceFor(await openFile(`f${n++}`, data), false, blksize * chunkBlocks), blksize);
        expect(got).toEqual(data);
        expect(blocks).toBe(Math.floor(size / blksize) + 1); // A file filling its last block ends with an empty one.
      }),
      { numRuns: 40 },
    );
  });

  it('convert to netascii on the fly, from a file or a buffer', async () => {
    const text = Buffer.from('a\n'.repeat(5000) + 'b\r' + 'end');
    const expected = toNetascii(text);
    expect((await drain(sourceFor(await openFile('text', text), true, 4096), 512)).data).toEqual(expected);
    expect((await drain(sourceFor({ kind: 'buffer', data: text }, true, 4096), 512)).data).toEqual(expected);
  });

  it('do not mistake a read in flight for the end of the file', async () => {
    const source = sourceFor(await openFile('in-flight', Buffer.alloc(512, 1)), false, 65536);
    expect(source.take(512)).toBeNull();
    const filling = source.fill(512);
    expect(source.take(512)).toBeNull();
    await filling;
    expect(source.take(512)).toHaveLength(512);
    expect(source.take(512)).toHaveLength(0);
    await source.close();
  });

  it('end where the file now ends when it shrinks mid-transfer', async () => {
    const content = await openFile('shrinking', Buffer.alloc(200_000, 7));
    const source = sourceFor(content, false, 16_384);
    await source.fill(512);
    expect(source.take(512)).toHaveLength(512);
    truncateSync(join(dir.path, 'shrinking'), 50_000);
    const rest = await drain(source, 512);
    expect(rest.data.length + 512).toBe(50_000);
    expect(rest.data.equals(Buffer.alloc(rest.data.length, 7))).toBe(true);
  });

  it('refuse directories and report missing files', async () => {
    expect(await openRegularFile(dir.path)).toEqual({ ok: false, reason: 'not-a-file' });
    expect(await openRegularFile(join(dir.path, 'missing'))).toEqual({ ok: false, reason: 'not-found' });
  });

  it('size read-ahead in whole blocks of about one window, between 64 KiB and 1 MiB', () => {
    expect(readAheadBytes(512, 1)).toBe(65536);
    expect(readAheadBytes(1468, 1)).toBe(1468 * 45);
    expect(readAheadBytes(1468, 64)).toBe(1468 * 64);
    expect(readAheadBytes(65464, 64)).toBe(65464 * 16);
    expect(readAheadBytes(8, 65535)).toBe(8 * 65535);
  });
});
