import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openRegularFile, readAheadBytes, type Content } from '../../src/tftp/source.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('livery-tftp-source-');
afterAll(() => dir.cleanup());

async function openFile(name: string, data: Buffer): Promise<Content> {
  writeFileSync(join(dir.path, name), data);
  const opened = await openRegularFile(join(dir.path, name));
  if (!opened.ok) throw new Error(opened.reason);
  return opened.content;
}

describe('tftp content', () => {
  it('open a regular file with its size, fixed at open', async () => {
    const content = await openFile('kernel', Buffer.alloc(3000, 1));
    expect(content).toMatchObject({ kind: 'file', size: 3000 });
    if (content.kind === 'file') await content.handle.close();
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
