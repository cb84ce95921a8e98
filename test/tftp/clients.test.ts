/**
 * Independent TFTP clients against livery on 127.0.0.1: curl, tftp-hpa, atftp (Debian) and the
 * npm tftp2 client. Every download is checked by sha256 against the file on disk, at the sizes
 * where TFTP implementations go wrong: empty, exactly one block, one byte past the 16-bit block
 * counter at blksize 512 (rollover), and 100 MB.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { run, sha256File, startTestServer, writeRandomFile, type TestServer } from '../fixtures/tftp/harness.js';

const ROLLOVER = 512 * 65536 + 1;
const BIG = 100 * 1024 * 1024;
const SIZES = { 'empty.bin': 0, 'one-block.bin': 512, 'small.bin': 100_000, 'rollover.bin': ROLLOVER, 'big.bin': BIG } as const;
type Name = keyof typeof SIZES;

let s: TestServer;
const out = tempDir('livery-tftp-out-');
const sums = new Map<string, string>();
let downloads = 0;

beforeAll(async () => {
  s = await startTestServer({ maxBlksize: 1468, maxWindowsize: 64 });
  for (const [name, size] of Object.entries(SIZES)) {
    await writeRandomFile(join(s.root, name), size);
    sums.set(name, await sha256File(join(s.root, name)));
  }
  writeFileSync(join(s.root, 'notes.txt'), 'line one\nline two\r\nbare\rcarriage\n');
}, 120_000);

afterAll(async () => {
  await s?.stop();
  out.cleanup();
});

/** Checks the downloaded copy and the server's own record of the transfer. */
async function expectDownloaded(name: Name, local: string, result: { code: number | null; stderr: string }): Promise<void> {
  expect(result.code, result.stderr).toBe(0);
  expect(await sha256File(local)).toBe(sums.get(name));
  downloads++;
  const records = await s.transfersFinished(downloads, 10_000);
  expect(records.at(-1)).toMatchObject({ file: name, result: 'ok', bytes: SIZES[name] });
}

describe('curl', () => {
  it.each(['one-block.bin', 'rollover.bin'] as Name[])('fetches %s at its default blksize (512, rolling over past block 65535)', async (name) => {
    const local = join(out.path, `curl-512-${name}`);
    const r = await run('curl', ['-sS', '-o', local, `tftp://127.0.0.1:${s.port}/${name}`], { timeoutMs: 60_000 });
    await expectDownloaded(name, local, r);
    expect(s.records.at(-1)).toMatchObject({ blksize: 512 });
  }, 90_000);

  // curl rejects "tsize 0" in any OACK (tftpd-hpa's too), so an empty file needs it to ask for no options.
  it('fetches empty.bin with --tftp-no-options', async () => {
    const local = join(out.path, 'curl-empty.bin');
    const r = await run('curl', ['-sS', '--tftp-no-options', '-o', local, `tftp://127.0.0.1:${s.port}/empty.bin`], { timeoutMs: 30_000 });
    await expectDownloaded('empty.bin', local, r);
  }, 60_000);

  it.each(['one-block.bin', 'big.bin'] as Name[])('fetches %s with --tftp-blksize 1468', async (name) => {
    const local = join(out.path, `curl-1468-${name}`);
    const r = await run('curl', ['-sS', '--tftp-blksize', '1468', '-o', local, `tftp://127.0.0.1:${s.port}/${name}`], { timeoutMs: 90_000 });
    await expectDownloaded(name, local, r);
    expect(s.records.at(-1)).toMatchObject({ blksize: 1468 });
  }, 120_000);
});

describe('tftp-hpa', () => {
  it.each(['empty.bin', 'one-block.bin', 'small.bin'] as Name[])('fetches %s in octet mode (no options at all)', async (name) => {
    const local = join(out.path, `hpa-${name}`);
    const r = await run('tftp', ['127.0.0.1', String(s.port), '-m', 'octet', '-c', 'get', name, local], { timeoutMs: 60_000 });
    await expectDownloaded(name, local, r);
    expect(s.records.at(-1)).toMatchObject({ blksize: 512, options: {} });
  }, 90_000);

  it('fetches a text file in netascii mode and gets the original line ends back', async () => {
    const local = join(out.path, 'hpa-notes.txt');
    const r = await run('tftp', ['127.0.0.1', String(s.port), '-m', 'netascii', '-c', 'get', 'notes.txt', local], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(await sha256File(local)).toBe(await sha256File(join(s.root, 'notes.txt')));
    downloads++;
    expect((await s.transfersFinished(downloads)).at(-1)).toMatchObject({ file: 'notes.txt', result: 'ok' });
  }, 60_000);
});

describe('atftp', () => {
  const atftp = (name: string, local: string, options: string[]) =>
    run('atftp', [...options.flatMap((o) => ['--option', o]), '-g', '-r', name, '-l', local, '127.0.0.1', String(s.port)], { timeoutMs: 90_000 });

  it.each(['empty.bin', 'one-block.bin', 'big.bin'] as Name[])('fetches %s with blksize 1468, windowsize 16 and tsize', async (name) => {
    const local = join(out.path, `atftp-w16-${name}`);
    await expectDownloaded(name, local, await atftp(name, local, ['blksize 1468', 'windowsize 16', 'tsize 0']));
    expect(s.records.at(-1)).toMatchObject({ blksize: 1468, windowsize: 16, options: { blksize: '1468', windowsize: '16', tsize: '0' } });
  }, 120_000);

  it('fetches the rollover file at blksize 512', async () => {
    const local = join(out.path, 'atftp-512-rollover.bin');
    await expectDownloaded('rollover.bin', local, await atftp('rollover.bin', local, ['blksize 512']));
  }, 120_000);
});

describe('tftp2 (npm)', () => {
  interface Tftp2Client {
    read(file: string, push: (chunk: Buffer) => void, done: () => void): Promise<void>;
    close(): void;
  }
  const tftp2 = createRequire(import.meta.url)('tftp2') as (host: string, port: number) => Tftp2Client;

  it.each(['empty.bin', 'one-block.bin', 'small.bin'] as Name[])('fetches %s', async (name) => {
    const client = tftp2('127.0.0.1', s.port);
    const chunks: Buffer[] = [];
    try {
      // tftp2 has no timeout of its own (a lost packet would hang it), so the wait is bounded here.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('tftp2 read timed out')), 30_000);
        void client.read(name, (chunk) => void chunks.push(Buffer.from(chunk)), () => {
          clearTimeout(timer);
          resolve();
        });
      });
    } finally {
      client.close();
    }
    const local = join(out.path, `tftp2-${name}`);
    writeFileSync(local, Buffer.concat(chunks));
    await expectDownloaded(name, local, { code: 0, stderr: '' });
  }, 60_000);
});
