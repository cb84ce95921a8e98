import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The API abused over real sockets while machines keep booting. The server is its own process,
 * so its memory is measured apart from the attackers'. Attackers connect from 127.0.0.2, the
 * machines' requests from 127.0.0.1: per-address connection caps apply to each separately.
 */
const dir = tempDir();
let server: Awaited<ReturnType<typeof serveProcess>>;
let port = 0;
const BODY_TIMEOUT_MS = 1000;
const PER_CLIENT = 200;

beforeAll(async () => {
  const config = join(dir.path, 'livery.toml');
  // The doors' test asks for one machine's script every ~0.1 s for 6 s: on a fast machine that
  // is past the machine door's default burst per MAC (30), whose 429 is not what is tested here.
  writeFileSync(config, `[http]\nbodyTimeoutMs = ${BODY_TIMEOUT_MS}\nmaxConnectionsPerClient = ${PER_CLIENT}\nworkers = 1\n[http.machineDoor]\nperMacBurst = 1000\n`);
  server = await serveProcess(['--config', config, '--data-dir', join(dir.path, 'var'), '--http-listen', '127.0.0.1:0', '--no-tftp']);
  port = Number(new URL(server.url).port);
});
afterAll(async () => {
  await server?.stop();
  dir.cleanup();
});

const run = promisify(execFile);
const rssBytes = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'))![1]) * 1024;

interface Raw {
  socket: Socket;
  /** Everything the server sent, once it closed the connection (or the deadline passed). */
  closed: Promise<{ answer: string; afterMs: number }>;
}

/** A connection from the attacker's address that writes `head` and then whatever the test writes. */
function attacker(head: string, deadlineMs = 20_000): Raw {
  const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
  const started = Date.now();
  let answer = '';
  socket.on('data', (d) => (answer += d));
  socket.on('error', () => undefined);
  socket.write(head);
  const closed = new Promise<{ answer: string; afterMs: number }>((done) => {
    const timer = setTimeout(() => done({ answer, afterMs: Infinity }), deadlineMs);
    socket.on('close', () => {
      clearTimeout(timer);
      done({ answer, afterMs: Date.now() - started });
    });
  });
  return { socket, closed };
}

const post = (path: string, length: number, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: livery\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n${extra}\r\n`;

describe('unauthenticated and slow clients are refused before they cost anything', () => {
  it('answers 401 (or 404 without a route) to a 13 MiB unauthenticated body without waiting for it, and closes', async () => {
    for (const path of ['/v1/machines', '/v1/tokens', '/v1/machines/import', '/v1/images']) {
      const raw = attacker(post(path, 13 * 1024 * 1024));
      const { answer, afterMs } = await raw.closed;
      expect(answer, path).toMatch(/^HTTP\/1\.1 401 /);
      expect(answer).toContain('missing bearer token');
      expect(afterMs).toBeLessThan(5000);
    }
    const nowhere = await attacker(post('/v1/nowhere', 13 * 1024 * 1024)).closed;
    expect(nowhere.answer).toMatch(/^HTTP\/1\.1 404 [^]*no route POST \/v1\/nowhere/);
    expect(nowhere.afterMs).toBeLessThan(5000);
  });

  it('drops a body trickled a byte at a time within a few body timeouts, even authenticated', async () => {
    for (const path of ['/v1/machines', '/v1/machines/import']) {
      const raw = attacker(post(path, 1000, `Authorization: Bearer ${server.token}\r\n`));
      const trickle = setInterval(() => raw.socket.write('['), 200);
      const { answer, afterMs } = await raw.closed;
      clearInterval(trickle);
      expect(answer, path).toMatch(/^HTTP\/1\.1 408 /);
      expect(afterMs).toBeLessThan(BODY_TIMEOUT_MS * 4);
    }
  });

  it('closes connections past the per-address cap, and counts them', async () => {
    const held = Array.from({ length: PER_CLIENT + 20 }, () => attacker('', 3000));
    await new Promise((r) => setTimeout(r, 500));
    // The machines' own address is not affected by another address's connections.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const results = await Promise.all(held.map((h) => (h.socket.destroy(), h.closed)));
    expect(results.filter((r) => r.answer === '').length).toBe(held.length);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(Number(/livery_http_connections_refused_total\{reason="per-client"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(20);
    expect(Number(/livery_http_bodies_dropped_total\{route="\/v1\/machines"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  });
});

describe('machine-facing doors keep answering while the API is abused', () => {
  it('serves /healthz and boot scripts within a bound, with bounded memory, under many big and slow bodies', async () => {
    const rssBefore = rssBytes();
    // A legal-sized import (under http.bodyLimitBytes): only the missing token makes it worthless.
    const row = JSON.stringify({ macs: ['52:54:00:00:00:01'], hostname: 'h', labels: { rack: 'r0' } });
    const big = Buffer.from(`[${Array.from({ length: Math.floor((13 * 2 ** 20) / (row.length + 1)) }, () => row).join(',')}]`);
    let stop = false;
    const attacks: Promise<unknown>[] = [];
    // 16 attackers, each sending 13 MiB unauthenticated JSON bodies back to back.
    for (let i = 0; i < 16; i++) {
      attacks.push((async () => {
        while (!stop) {
          const raw = attacker(post('/v1/machines/import', big.length));
          raw.socket.write(big);
          await raw.closed;
        }
      })());
    }
    // 100 unfinished uploads and 50 trickled bodies, unauthenticated.
    const stalled = Array.from({ length: 100 }, () => attacker(post('/v1/machines/import', big.length) + ' '.repeat(64 * 1024)));
    const trickled = Array.from({ length: 50 }, () => attacker(post('/v1/machines', 1000)));
    const trickle = setInterval(() => trickled.forEach((t) => t.socket.write(' ')), 200);

    const worst = { healthz: 0, boot: 0 };
    let rssPeak = rssBefore;
    const until = Date.now() + 6000;
    while (Date.now() < until) {
      for (const [name, path] of [['healthz', '/healthz'], ['boot', '/boot/52:54:00:77:00:01.ipxe']] as const) {
        // curl times the request itself: this process's own load (it runs the attackers) stays out of it.
        const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '--max-time', '10', '-w', '%{http_code} %{time_total}', `${server.url}${path}`]).catch((e) => e);
        const [code, seconds] = String(stdout).split(' ');
        expect(code, path).toBe('200');
        worst[name] = Math.max(worst[name], Number(seconds) * 1000);
      }
      rssPeak = Math.max(rssPeak, rssBytes());
      await new Promise((r) => setTimeout(r, 100));
    }
    stop = true;
    clearInterval(trickle);
    await Promise.all(attacks);
    const stalledResults = await Promise.all(stalled.map((s) => s.closed));
    const trickledResults = await Promise.all(trickled.map((s) => s.closed));
    console.log(`abuse: worst /healthz ${worst.healthz.toFixed(0)} ms, worst boot script ${worst.boot.toFixed(0)} ms, RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> peak ${(rssPeak / 2 ** 20).toFixed(0)} MiB`);

    expect(worst.healthz).toBeLessThan(5000);
    expect(worst.boot).toBeLessThan(5000);
    expect(rssPeak - rssBefore).toBeLessThan(150 * 2 ** 20);
    // Every unauthenticated upload was answered 401 and closed, none held to a timeout.
    for (const r of [...stalledResults, ...trickledResults]) {
      expect(r.answer).toMatch(/^HTTP\/1\.1 401 /);
      expect(r.afterMs).toBeLessThan(10_000);
    }
  });
});
