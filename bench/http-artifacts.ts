/**
 * Artifact download throughput: one 1 GiB artifact fetched by 1 and by 64 concurrent streams,
 * from `livery serve` (the built binary; HTTP worker processes, one per core) and from nginx
 * (2 workers, sendfile) serving the very same file on disk. The client is one curl process
 * (`--parallel` for the concurrent case, bodies to /dev/null); its CPU time is reported so a
 * client bottleneck would show, and so is each server's own CPU time per GB: the cost that decides
 * the ratio when the cores are shared.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, createReadStream, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { serveProcess } from '../test/helpers/cli.js';
import { freePort, type BenchHarness, type BenchRow } from './lib/harness.js';
import { startNginx } from './lib/nginx.js';

const GiB = 1024 ** 3;
const STREAMS = 64;

interface Transfer {
  /** Megabytes (10^6 bytes) per second over all streams together. */
  mbPerSecond: number;
  /** curl's user+system CPU seconds per GB received. */
  clientCpuPerGb: number;
  /** The server's (all its processes') user+system CPU seconds per GB sent. */
  serverCpuPerGb: number;
}

/** CPU seconds used so far by a process and its direct children (a server's workers). */
function treeCpuSeconds(pid: number): number {
  const children = (spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout ?? '').split('\n').filter(Boolean).map(Number);
  let ticks = 0;
  for (const p of [pid, ...children]) {
    // Fields 14 and 15 of /proc/<pid>/stat (after the parenthesised name): utime, stime.
    const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export default async function (h: BenchHarness): Promise<BenchRow[]> {
  const artifact = join(h.tmpDir, 'rootfs.squashfs');
  const sha256 = writeArtifact(artifact, GiB);
  h.log(`wrote a ${GiB} byte artifact`);

  const config = join(h.tmpDir, 'livery.toml');
  const liveryPort = await freePort();
  writeFileSync(config, `dataDir = "${join(h.tmpDir, 'var')}"\nlog.level = "warn"\n[http]\nlisten = "127.0.0.1:${liveryPort}"\nworkers = 0\n[tftp]\nenabled = false\n`);
  const livery = await serveProcess(['--config', config]);
  let nginx: { stop: () => Promise<void> } | null = null;
  try {
    const imageId = await publish(livery.url, livery.token, artifact, sha256);
    const blob = join(h.tmpDir, 'var', 'blobs', 'sha256', sha256.slice(0, 2), sha256);
    // nginx serves the blob store itself: the same file, the same page cache. Its workers
    // run unprivileged, so the (mkdtemp, 0700) scratch folder must be traversable.
    const root = dirname(dirname(blob));
    chmodSync(h.tmpDir, 0o755);
    const nginxPort = await freePort();
    nginx = await startNginx(join(h.tmpDir, 'nginx'), root, nginxPort);
    const urls = { livery: `${livery.url}/images/${imageId}/rootfs.squashfs`, nginx: `http://127.0.0.1:${nginxPort}/${relative(root, blob)}` };
    const pids = { livery: livery.proc.pid!, nginx: Number(readFileSync(join(h.tmpDir, 'nginx', 'nginx.pid'), 'utf8')) };

    const rows: BenchRow[] = [];
    for (const streams of [1, STREAMS]) {
      const results: Record<'livery' | 'nginx', Transfer[]> = { livery: [], nginx: [] };
      // Warm the page cache and both servers once, then alternate so drift hits both alike.
      await download(urls.livery, pids.livery, 1, GiB);
      await download(urls.nginx, pids.nginx, 1, GiB);
      for (let run = 0; run < h.runs; run++) {
        for (const server of ['livery', 'nginx'] as const) {
          const t = await download(urls[server], pids[server], streams, GiB);
          results[server].push(t);
          h.log(
            `${streams} stream(s), run ${run + 1}: ${server} ${t.mbPerSecond.toFixed(0)} MB/s ` +
              `(CPU s/GB: server ${t.serverCpuPerGb.toFixed(2)}, curl ${t.clientCpuPerGb.toFixed(2)})`,
          );
        }
      }
      const cpu = (s: 'livery' | 'nginx', k: 'clientCpuPerGb' | 'serverCpuPerGb') => h.median(results[s].map((t) => t[k])).median.toFixed(2);
      rows.push(
        h.row({
          name: `artifacts: GET 1 GiB artifact, ${streams === 1 ? 'one stream' : `${streams} concurrent streams`}`,
          unit: 'MB/s',
          higherIsBetter: true,
          livery: results.livery.map((t) => t.mbPerSecond),
          reference: results.nginx.map((t) => t.mbPerSecond),
          referenceName: 'nginx (2 workers, sendfile)',
          notes:
            `one curl process${streams === 1 ? '' : ` --parallel ${streams}`}, bodies to /dev/null; livery serve with http.workers = 0 ` +
            `(${availableParallelism()} HTTP processes here); CPU seconds per GB: server ${cpu('livery', 'serverCpuPerGb')} (livery) / ` +
            `${cpu('nginx', 'serverCpuPerGb')} (nginx), curl ${cpu('livery', 'clientCpuPerGb')} / ${cpu('nginx', 'clientCpuPerGb')}`,
        }),
      );
    }
    return rows;
  } finally {
    await nginx?.stop();
    await livery.stop();
  }
}

/** Writes `size` bytes (a repeated random block: transfer speed does not depend on content). */
function writeArtifact(path: string, size: number): string {
  const block = randomBytes(16 * 1024 * 1024);
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < size; written += block.length) {
      const chunk = block.subarray(0, Math.min(block.length, size - written));
      writeSync(fd, chunk);
      hash.update(chunk);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Publishes a bundle around the artifact, streaming it (no temp bundle on disk). */
async function publish(url: string, token: string, artifact: string, sha256: string): Promise<string> {
  const small = (name: string, role: string) => {
    const content = randomBytes(1024);
    return { name, role, content, size: content.length, sha256: createHash('sha256').update(content).digest('hex') };
  };
  const kernel = small('vmlinuz', 'kernel');
  const initrd = small('initrd.img', 'initrd');
  const size = statSync(artifact).size;
  const manifest = {
    schema: 1,
    name: 'bench',
    version: `1.${Date.now()}`,
    os: 'debian-bookworm',
    arch: 'amd64',
    createdAt: new Date().toISOString(),
    kernelArgs: '',
    artifacts: [kernel, initrd].map(({ name, role, size, sha256 }) => ({ name, role, size, sha256 })).concat([{ name: 'rootfs.squashfs', role: 'rootfs', size, sha256 }]),
    recipe: '',
    packages: [],
  };
  const tar = pack();
  const feed = async () => {
    tar.entry({ name: 'manifest.json' }, JSON.stringify(manifest));
    for (const a of [kernel, initrd]) tar.entry({ name: a.name }, a.content);
    await new Promise<void>((resolve, reject) => createReadStream(artifact).pipe(tar.entry({ name: 'rootfs.squashfs', size }, (err) => (err ? reject(err) : resolve()))));
    tar.finalize();
  };
  void feed().catch((err: Error) => tar.destroy(err));
  const res = await fetch(`${url}/v1/images`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-tar' },
    body: Readable.toWeb(Readable.from(tar)) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const body = (await res.json()) as { id?: string; error?: string };
  if (res.status !== 201 || !body.id) throw new Error(`publish failed: ${res.status} ${body.error}`);
  return body.id;
}

/** `streams` parallel GETs of `url` by one curl process; checks every byte count. */
async function download(url: string, serverPid: number, streams: number, size: number): Promise<Transfer> {
  const args = ['-sS', '--fail', '-w', '%{size_download}\\n'];
  if (streams > 1) args.push('--parallel', '--parallel-immediate', '--parallel-max', String(streams));
  for (let i = 0; i < streams; i++) args.push('-o', '/dev/null', url);
  const serverCpuBefore = treeCpuSeconds(serverPid);
  const started = process.hrtime.bigint();
  const { stdout, cpuSeconds } = await run('/usr/bin/time', ['-f', 'CPU %U %S', 'curl', ...args]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const serverCpu = treeCpuSeconds(serverPid) - serverCpuBefore;
  const sizes = stdout.trim().split('\n').map(Number);
  if (sizes.length !== streams || sizes.some((n) => n !== size)) throw new Error(`short download from ${url}: ${sizes.join(',')}`);
  const bytes = size * streams;
  const gb = bytes / 1e9;
  return { mbPerSecond: bytes / seconds / 1e6, clientCpuPerGb: cpuSeconds / gb, serverCpuPerGb: serverCpu / gb };
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; cpuSeconds: number }> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 600_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${cmd} failed: ${err.message} ${stderr}`));
      const m = /CPU ([0-9.]+) ([0-9.]+)/.exec(stderr);
      resolve({ stdout, cpuSeconds: m ? Number(m[1]) + Number(m[2]) : NaN });
    }),
  );
}
