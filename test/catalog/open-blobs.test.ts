import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { OpenBlobs } from '../../src/catalog/open-blobs.js';

const dir = mkdtempSync(join(tmpdir(), 'open-blobs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const blob = (name: string, content = name) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const text = async (reader: { file: { read(b: Buffer, o: number, l: number, p: number): Promise<{ bytesRead: number }> } }) => {
  const buffer = Buffer.alloc(64);
  const { bytesRead } = await reader.file.read(buffer, 0, 64, 0);
  return buffer.subarray(0, bytesRead).toString();
};

describe('OpenBlobs', () => {
  it('gives readers of one file at once the same open file, and closes it once the last has been gone a while', async () => {
    const blobs = new OpenBlobs(100);
    const path = blob('shared');
    const [a, b] = await Promise.all([blobs.acquire(path), blobs.acquire(path)]);
    expect(a.file).toBe(b.file);
    a.release();
    a.release(); // twice is once
    await sleep(200);
    expect(b.file.fd).toBeGreaterThan(0); // one reader still holds it
    b.release();
    expect(blobs.size).toBe(1);
    await sleep(200);
    expect(blobs.size).toBe(0);
    expect(a.file.fd).toBe(-1);
  });

  it('a reader arriving while the file waits to be closed keeps it open', async () => {
    const blobs = new OpenBlobs(100);
    const path = blob('again');
    const first = await blobs.acquire(path);
    first.release();
    await sleep(50);
    const second = await blobs.acquire(path);
    expect(second.file).toBe(first.file);
    await sleep(150);
    expect(second.file.fd).toBeGreaterThan(0);
    second.release();
    await blobs.close();
    expect(second.file.fd).toBe(-1);
  });

  it('a file that cannot be opened is not kept: the next reader tries again', async () => {
    const blobs = new OpenBlobs(100);
    const path = join(dir, 'later');
    await expect(blobs.acquire(path)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(blobs.size).toBe(0);
    blob('later');
    const reader = await blobs.acquire(path);
    expect(await text(reader)).toBe('later');
    reader.release();
    await blobs.close();
  });

  it('a file deleted while open is not handed out again: the path is opened afresh, and its readers keep theirs', async () => {
    const blobs = new OpenBlobs(60_000);
    const path = blob('collected', 'old bytes');
    const reading = await blobs.acquire(path);
    unlinkSync(path);
    await expect(blobs.acquire(path)).rejects.toMatchObject({ code: 'ENOENT' });
    blob('collected', 'new bytes');
    const fresh = await blobs.acquire(path);
    expect([await text(reading), await text(fresh)]).toEqual(['old bytes', 'new bytes']);
    // The old file's last reader closes it at once: nothing else can reach it.
    reading.release();
    await sleep(20);
    expect(reading.file.fd).toBe(-1);
    expect(fresh.file.fd).toBeGreaterThan(0);
    fresh.release();
    await blobs.close();
  });
});
