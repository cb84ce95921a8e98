/**
 * TFTP: 100 MB download throughput, livery against tftpd-hpa (in.tftpd), both on 127.0.0.1 and
 * both fetched by the same client, atftp, the one Debian client that can ask for blksize and
 * windowsize. Livery runs in this process; in.tftpd is started (and killed) here.
 *
 * Runs alternate between the two servers so that machine noise falls on both alike.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as TftpModule from '../src/tftp/index.js';
import { writeRandomFile } from '../test/fixtures/tftp/harness.js';
import { versionOf, type BenchHarness, type BenchRow } from './lib/harness.js';

/**
 * The server as it ships, compiled by tsc into dist/ (`make bench` builds first). Imported from
 * source it would run through tsx, whose keep-names helper costs the hot path a little per call.
 */
const { startTftpServer } = (await import(resolve(import.meta.dirname, '../dist/tftp/index.js'))) as typeof TftpModule;

const SIZE = 100_000_000;
const FILE = 'payload.bin';
const CLIENT_LIMIT_MS = 180_000;

interface Case {
  blksize: number;
  windowsize: number;
}

const CASES: Case[] = [
  { blksize: 512, windowsize: 1 },
  { blksize: 1468, windowsize: 1 },
  { blksize: 1468, windowsize: 16 },
  { blksize: 1468, windowsize: 64 },
];

export default async function tftp(h: BenchHarness): Promise<BenchRow[]> {
  // in.tftpd chroots into the root and then runs as nobody, so the root must be world-readable.
  const root = join(h.tmpDir, 'root');
  mkdirSync(root, { mode: 0o755 });
  await writeRandomFile(join(root, FILE), SIZE);
  const local = join(h.tmpDir, 'received.bin');

  const livery = await startTftpServer({ host: '127.0.0.1', port: 0, root, maxBlksize: 1468, maxWindowsize: 64 });
  const hpaPort = await freeUdpPort();
  const hpa = spawn('in.tftpd', ['--foreground', '--address', `127.0.0.1:${hpaPort}`, '--secure', '--blocksize', '1468', root], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    if (hpa.exitCode !== null) throw new Error(`in.tftpd exited with ${hpa.exitCode}`);
    const hpaVersion = versionOf('in.tftpd', ['-V']);
    // atftp prints its version on stderr, which versionOf() only reads when the tool fails.
    const atftpVersion = spawnSync('atftp', ['-V'], { encoding: 'utf8' }).stderr.split('\n')[0]!.trim();
    const rows: BenchRow[] = [];
    for (const c of CASES) {
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < h.runs; i++) {
        ours.push(await download(livery.address().port, c, local));
        theirs.push(await download(hpaPort, c, local));
        h.log(`blksize ${c.blksize} windowsize ${c.windowsize}: livery ${ours.at(-1)!.toFixed(1)} MB/s, tftpd-hpa ${theirs.at(-1)!.toFixed(1)} MB/s`);
      }
      const windowNote =
        c.windowsize > 1
          ? `; tftpd-hpa 5.2 does not implement windowsize (RFC 7440), so it leaves the option out of its OACK and serves the same request at windowsize 1`
          : '';
      rows.push(
        h.row({
          name: `tftp: 100 MB download, blksize ${c.blksize}${c.windowsize > 1 ? `, windowsize ${c.windowsize}` : ''}`,
          unit: 'MB/s',
          higherIsBetter: true,
          livery: ours,
          reference: theirs,
          referenceName: 'tftpd-hpa (in.tftpd --secure -B 1468)',
          notes: `${atftpVersion} as the client for both, ${c.windowsize > 1 ? `--option "windowsize ${c.windowsize}" ` : ''}--option "blksize ${c.blksize}", on 127.0.0.1; ${hpaVersion}${windowNote}`,
        }),
      );
    }
    return rows;
  } finally {
    await stop(hpa);
    await livery.close();
  }
}

/** One atftp download; returns MB/s (10^6 bytes per second) after checking the whole file arrived. */
async function download(port: number, c: Case, local: string): Promise<number> {
  const options = [`blksize ${c.blksize}`, ...(c.windowsize > 1 ? [`windowsize ${c.windowsize}`] : [])];
  const args = [...options.flatMap((o) => ['--option', o]), '-g', '-r', FILE, '-l', local, '127.0.0.1', String(port)];
  const started = performance.now();
  const child = spawn('atftp', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), CLIENT_LIMIT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve)).finally(() => clearTimeout(killer));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`atftp ${args.join(' ')} exited ${code}: ${stderr}`);
  const got = statSync(local).size;
  if (got !== SIZE) throw new Error(`atftp received ${got} bytes, expected ${SIZE}`);
  return SIZE / 1e6 / seconds;
}

function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  return new Promise((resolve) =>
    socket.bind({ address: '127.0.0.1', port: 0 }, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    }),
  );
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
