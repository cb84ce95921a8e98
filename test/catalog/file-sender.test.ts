import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle, randomArtifacts } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { selfSignedCert } from '../helpers/tls-cert.js';
import { tempDir } from '../helpers/tmp.js';

// Larger than what loopback's socket buffers hold, so a client that stops reading stops the transfer.
const MiB = 1024 * 1024;
const artifacts = randomArtifacts({ rootfs: 24 * MiB + 5 });
const rootfs = artifacts[2]!.content;
const IDLE_MS = 1000;

let server: TestServer;
let imageId: string;

beforeAll(async () => {
  server = await startTestServer({ http: { listen: '127.0.0.1:0', idleTimeoutMs: IDLE_MS } });
  const res = await publishBundle(server, (await makeBundle('sent', '1.0', artifacts)).tar);
  imageId = ((await res.json()) as { id: string }).id;
});
afterAll(async () => {
  await server?.stop();
});

const path = (file = 'rootfs.squashfs') => `/images/${imageId}/${file}`;
/** This process's threads: name and nice value (field 19 of /proc/<pid>/task/<tid>/stat). */
const threads = () =>
  readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return { name: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) };
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GETs the rootfs, letting `reader` decide when to take each chunk; resolves with what arrived and how it ended. */
function download(reader: (res: IncomingMessage, chunk: Buffer) => void): Promise<{ body: Buffer; complete: boolean; ms: number }> {
  const began = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (complete: boolean) => resolve({ body: Buffer.concat(chunks), complete, ms: Date.now() - began });
    httpGet(`${server.url}${path()}`, { agent: false }, (res) => {
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        reader(res, chunk);
      });
      res.on('error', () => {}); // a cut body shows as an incomplete one
      res.on('close', () => done(res.complete));
    }).on('error', () => done(false));
  });
}

describe('artifact bodies over plain TCP', () => {
  it('go out by sendfile from its own thread, byte for byte, at a nice value that yields to answers', async () => {
    const res = await fetch(`${server.url}${path()}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(rootfs)).toBe(true);
    const sender = threads().filter((t) => t.name === 'livery-sendfile');
    expect(sender).toEqual([{ name: 'livery-sendfile', nice: 10 }]);
    // The rest of the process keeps its priority.
    expect(threads().find((t) => t.name !== 'livery-sendfile')!.nice).toBe(0);
  });

  it('answer pipelined requests on one connection in order, each with its own range', async () => {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    const ask = (range: string, close = false) =>
      `GET ${path()} HTTP/1.1\r\nHost: x\r\nRange: bytes=${range}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
    socket.write(ask('0-99') + ask(`${5 * MiB}-${6 * MiB - 1}`) + ask('-7', true));
    await new Promise((r) => socket.on('close', r));
    const wire = Buffer.concat(received);
    const bodies: Buffer[] = [];
    for (let at = 0; at < wire.length; ) {
      const headEnd = wire.indexOf('\r\n\r\n', at);
      const head = wire.subarray(at, headEnd).toString('latin1');
      expect(head).toMatch(/^HTTP\/1\.1 206 /);
      const length = Number(/content-length: (\d+)/i.exec(head)![1]);
      bodies.push(wire.subarray(headEnd + 4, headEnd + 4 + length));
      at = headEnd + 4 + length;
    }
    expect(bodies.map((b) => b.length)).toEqual([100, MiB, 7]);
    expect(bodies[0]!.equals(rootfs.subarray(0, 100))).toBe(true);
    expect(bodies[1]!.equals(rootfs.subarray(5 * MiB, 6 * MiB))).toBe(true);
    expect(bodies[2]!.equals(rootfs.subarray(rootfs.length - 7))).toBe(true);
  });

  it('outlast the idle limit while the client keeps reading, however slowly', async () => {
    const slow = await download((res) => {
      res.pause();
      setTimeout(() => res.resume(), 8);
    });
    expect(slow.complete).toBe(true);
    expect(slow.body.equals(rootfs)).toBe(true);
    // Else this proves nothing about the limit: the transfer must have run longer than it.
    expect(slow.ms).toBeGreaterThan(IDLE_MS);
  });

  it('end, closing the connection, once a client has read nothing for the idle limit', async () => {
    let stalled = false;
    const cut = await download((res) => {
      if (stalled) return;
      stalled = true;
      res.pause();
      setTimeout(() => res.resume(), 3 * IDLE_MS);
    });
    expect(cut.complete).toBe(false);
    expect(cut.body.length).toBeLessThan(rootfs.length);
    expect(cut.body.equals(rootfs.subarray(0, cut.body.length))).toBe(true);
    // The server goes on serving.
    const res = await fetch(`${server.url}${path('vmlinuz')}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(artifacts[0]!.content)).toBe(true);
  });

  it('leave no descriptor behind when clients hang up mid-body', async () => {
    // Sockets and open files of this process (the clients' included), by kind.
    const openDescriptors = () => {
      const links = readdirSync('/proc/self/fd').map((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return ''; // closed between the listing and the read
        }
      });
      return { sockets: links.filter((l) => l.startsWith('socket:')).length, blobs: links.filter((l) => l.includes('/blobs/')).length };
    };
    await download(() => {}); // the blob cache and the sender's thread are open from here on
    const before = openDescriptors();
    await Promise.all(
      Array.from({ length: 8 }, () =>
        download((res) => {
          res.destroy();
        }),
      ),
    );
    // The server hears of each hang-up a moment after the client's side is gone: wait, within bounds.
    let after = openDescriptors();
    for (let waited = 0; (after.sockets > before.sockets || after.blobs > before.blobs) && waited < 5000; waited += 50) {
      await sleep(50);
      after = openDescriptors();
    }
    expect(after.sockets).toBeLessThanOrEqual(before.sockets);
    expect(after.blobs).toBeLessThanOrEqual(before.blobs);
  });
});

describe('artifact bodies over TLS', () => {
  it('are copied through OpenSSL, byte for byte, ranges included', async () => {
    const dir = tempDir();
    const { cert, key } = selfSignedCert(dir.path);
    const tls = await startTestServer({ http: { listen: '127.0.0.1:0', tls: { cert, key } } });
    const ca = readFileSync(cert);
    const call = (method: string, url: string, headers: Record<string, string>, body?: Buffer) =>
      new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const req = httpsRequest(url, { method, headers, ca }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const { tar } = await makeBundle('sent', '1.0', artifacts);
      const published = await call('POST', `${tls.url}/v1/images`, { authorization: `Bearer ${tls.token}`, 'content-type': 'application/x-tar' }, tar);
      expect(published.status).toBe(201);
      const id = (JSON.parse(published.body.toString()) as { id: string }).id;
      const whole = await call('GET', `${tls.url}/images/${id}/rootfs.squashfs`, {});
      expect(whole.status).toBe(200);
      expect(whole.body.equals(rootfs)).toBe(true);
      const slice = await call('GET', `${tls.url}/images/${id}/rootfs.squashfs`, { range: 'bytes=1000-1999' });
      expect(slice.status).toBe(206);
      expect(slice.body.equals(rootfs.subarray(1000, 2000))).toBe(true);
    } finally {
      await tls.stop();
      dir.cleanup();
    }
  });
});
