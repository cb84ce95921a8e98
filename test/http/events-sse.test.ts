/**
 * Event streams under pressure, over real TCP: clients that never read (a 4 KiB receive buffer)
 * are cut once their backlog passes the bound, while a reading client gets every event in
 * order; a long replay is paged, so a stalled replay holds neither memory nor the event loop.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventTuple } from '../../src/cmdb/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  // A client that reads nothing for a second is cut (the HTTP idle timeout).
  server = await startTestServer({ http: { listen: '127.0.0.1:0', idleTimeoutMs: 1000 } });
});
afterAll(async () => {
  await server?.stop();
});

const STALLED = resolve(import.meta.dirname, '../fixtures/sse/stalled_readers.py');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const port = () => Number(new URL(server.url).port);

/** Adds `count` events, each carrying `padding` bytes of detail, in batches of 500. */
function addEvents(count: number, padding: number): void {
  for (let done = 0; done < count; done += 500) {
    const batch: EventTuple[] = Array.from({ length: Math.min(500, count - done) }, () => [Date.now(), 'flood', null, null, null, { pad: 'x'.repeat(padding) }, false]);
    server.livery.cmdb.events.addMany(batch);
  }
}

/** N clients that send their request and never read, from a separate process. */
async function stalledReaders(count: number, query: string): Promise<{ proc: ChildProcessWithoutNullStreams; finish: () => Promise<number> }> {
  const proc = spawn('python3', [STALLED, String(port()), server.token, String(count), query]);
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  for (let i = 0; i < 200 && !out.includes('ready'); i++) await sleep(50);
  expect(out).toContain('ready');
  return {
    proc,
    finish: async () => {
      proc.stdin.end();
      const code = await new Promise((r) => proc.once('exit', r));
      expect(code, out).toBe(0);
      return Number(/closed (\d+)/.exec(out)![1]);
    },
  };
}

/** A client that reads everything, collecting the ids it saw, until it has seen `until`. */
function reader(query: string, until: number): { ids: number[]; done: Promise<void>; close: () => void } {
  const ids: number[] = [];
  const socket = connect(port(), '127.0.0.1');
  socket.write(`GET /v1/events${query} HTTP/1.1\r\nHost: livery\r\nAuthorization: Bearer ${server.token}\r\n\r\n`);
  let text = '';
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk) => {
      // Only the id lines matter; a line split across chunks is completed by the next one.
      text += chunk.toString('latin1');
      const lines = text.split('\n');
      text = lines.pop()!;
      for (const line of lines) if (line.startsWith('id: ')) ids.push(Number(line.slice(4)));
      if (ids.length > 0 && ids[ids.length - 1]! >= until) resolve();
    });
    socket.on('close', () => reject(new Error(`stream closed after ${ids.length} events`)));
  });
  done.catch(() => undefined);
  return { ids, done, close: () => socket.destroy() };
}

const metric = async (name: string) => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? 0);
};
const consecutive = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('SSE flow control', () => {
  it('cuts clients that do not read under an event flood and keeps a reading client whole', async () => {
    const first = server.livery.cmdb.events.lastId() + 1;
    const stalled = await stalledReaders(20, '');
    const live = reader('', first + 8000 - 1);
    await sleep(500); // every stream subscribed
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    // 8,000 events of ~2 KiB: ~16 MB for every stream, far past the bound and the kernel buffers.
    for (let i = 0; i < 16; i++) {
      addEvents(500, 2048);
      await sleep(100);
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }
    await live.done;
    live.close();
    expect(live.ids).toEqual(consecutive(first, first + 8000 - 1));
    await sleep(1500);
    expect(await metric('livery_sse_streams_cut_total{reason="stalled"}')).toBe(20);
    expect(await stalled.finish()).toBe(20);
    // Without flow control, 20 × 16 MB would wait in this process; with it, about a page each.
    console.log(`RSS growth under the flood: ${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MiB`);
    expect(rssPeak - rssBefore).toBeLessThan(200 * 1024 * 1024);
  }, 120_000);

  it('pages a long replay: a stalled replay holds neither memory nor the event loop, a reading one gets it all', async () => {
    const from = server.livery.cmdb.events.lastId();
    addEvents(100_000, 200);
    const last = server.livery.cmdb.events.lastId();
    const rssBefore = process.memoryUsage().rss;
    const stalled = await stalledReaders(10, `?after=${from}`);
    // The event loop answers while ten replays wait on their clients.
    let slowest = 0;
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      slowest = Math.max(slowest, performance.now() - t);
      await sleep(100);
    }
    // A stalled replay waits for its client: 10 × ~30 MB of backlog never come into memory.
    const grown = process.memoryUsage().rss - rssBefore;
    console.log(`stalled replays: slowest /healthz ${slowest.toFixed(0)} ms, RSS growth ${(grown / 2 ** 20).toFixed(0)} MiB`);
    expect(slowest).toBeLessThan(1500);
    expect(grown).toBeLessThan(150 * 1024 * 1024);
    const replay = reader(`?after=${from}`, last);
    await replay.done;
    replay.close();
    expect(replay.ids).toEqual(consecutive(from + 1, last));
    await stalled.finish();
  }, 180_000);
});
