import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { serveProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

// `livery serve` with http.workers = 3: HTTP from forked processes sharing one port.
const dir = tempDir('livery-http-workers-');
let server: Awaited<ReturnType<typeof serveProcess>>;
const children = () =>
  (spawnSync('pgrep', ['-P', String(server.proc.pid)], { encoding: 'utf8' }).stdout ?? '').split('\n').filter(Boolean).map(Number);
const api = (path: string, init: RequestInit = {}) =>
  fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${server.token}`, ...(init.headers as object) } });

beforeAll(async () => {
  const config = join(dir.path, 'livery.toml');
  writeFileSync(config, `dataDir = "${join(dir.path, 'var')}"\n[http]\nlisten = "127.0.0.1:0"\nworkers = 3\n[tftp]\nenabled = false\n`);
  server = await serveProcess(['--config', config]);
});
afterAll(async () => {
  await server?.stop();
  dir.cleanup();
});

describe('HTTP worker processes', () => {
  it('runs the configured number of workers on one port', () => {
    expect(children()).toHaveLength(3);
  });

  it('every worker serves what another published; /metrics sums all of them', async () => {
    const { tar, artifacts } = await makeBundle('workers', '1.0');
    const res = await publishBundle({ api: (p, init) => api(p, init) }, tar);
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    // Separate connections, so the primary hands them to every worker in turn.
    const bodies = await Promise.all(
      Array.from({ length: 12 }, () => fetch(`${server.url}/images/${id}/vmlinuz`, { headers: { connection: 'close' } }).then((r) => r.arrayBuffer())),
    );
    for (const b of bodies) expect(Buffer.from(b).equals(artifacts[0]!.content)).toBe(true);
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { connection: 'close' } })).text();
    const served = /^livery_http_requests_total\{route="\/images\/:id\/:file",method="GET",status="200"\} (\d+)$/m.exec(metrics);
    expect(Number(served?.[1])).toBe(12);
  });

  it('a worker that dies is replaced', async () => {
    const before = children();
    process.kill(before[0]!, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !(children().length === 3 && !children().includes(before[0]!))) await new Promise((r) => setTimeout(r, 100));
    expect(children()).toHaveLength(3);
    expect(children()).not.toContain(before[0]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('stopping the server stops every worker', async () => {
    const workers = children();
    await server.stop();
    expect(server.proc.exitCode).toBe(0);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  });
});
