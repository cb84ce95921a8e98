/**
 * The native TFTP data path (native/tftp_pump.c) over real UDP on 127.0.0.1: one transfer at a
 * time, started directly, with a raw client playing the peer packet by packet. These are the
 * protocol corners of a transfer once its request was accepted: windows, rollover, duplicates,
 * timeouts and backoff, strangers, malformed packets, netascii, files that change underneath.
 */
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { closeSync, openSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodePacket, type TftpPacket } from '../../src/tftp/codec.js';
import { startPump, type PumpedTransfer, type PumpSpec } from '../../src/tftp/pump.js';
import { RawClient, type Received } from '../fixtures/tftp/harness.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('livery-tftp-pump-');
afterAll(() => dir.cleanup());
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pattern = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

/** The reference conversion: LF becomes CR LF, a bare CR becomes CR NUL (RFC 1350 netascii). */
function netascii(bytes: Buffer): Buffer {
  const out: number[] = [];
  for (const b of bytes) out.push(...(b === 0x0a ? [0x0d, 0x0a] : b === 0x0d ? [0x0d, 0] : [b]));
  return Buffer.from(out);
}

interface Session {
  c: RawClient;
  t: PumpedTransfer;
  /** Sends to the transfer's socket. */
  send(packet: TftpPacket | Buffer): void;
  /** The next packet and when it arrived (performance.now()). */
  next(timeoutMs?: number): Promise<Received & { at: number }>;
  blocks(items: Received[]): (number | string)[];
}

/** A transfer of nothing in particular to `peerPort`; tests override what they exercise. */
function spec(peerPort: number): PumpSpec {
  return { host: '127.0.0.1', peerAddress: '127.0.0.1', peerPort, fd: -1, data: null, size: 0, netascii: false, blksize: 512, windowsize: 1, timeoutMs: 5000, retries: 5, silenceLimitMs: 600_000, readAhead: 65536, oack: null };
}

async function session(content: Buffer | { file: string }, settings: Partial<PumpSpec> = {}): Promise<Session> {
  const c = await RawClient.open();
  cleanups.push(() => c.close());
  let fd = -1;
  if (!Buffer.isBuffer(content)) {
    fd = openSync(content.file, 'r');
    cleanups.push(() => closeSync(fd));
  }
  const size = Buffer.isBuffer(content) ? content.length : Number(settings.size);
  const t = startPump({ ...spec(c.port), fd, data: Buffer.isBuffer(content) ? content : null, size, ...settings });
  cleanups.push(async () => {
    t.abort('test over');
    await t.done;
  });
  return {
    c,
    t,
    send: (packet) => c.send(packet, t.port),
    next: async (timeoutMs) => ({ ...(await c.receive(timeoutMs)), at: performance.now() }),
    blocks: (items) => items.map(({ packet }) => (packet.op === 'data' ? packet.block : packet.op)),
  };
}

/** Reads a whole transfer, ACKing each window of `windowsize` blocks. */
async function fetch(s: Session, blksize: number, windowsize: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let round = 0; round < 100_000; round++) {
    let last: Received | null = null;
    for (let i = 0; i < windowsize; i++) {
      last = await s.next();
      parts.push(data(last));
      if (data(last).length < blksize) break;
    }
    s.send({ op: 'ack', block: (last!.packet as { block: number }).block });
    if (data(last!).length < blksize) return Buffer.concat(parts);
  }
  throw new Error('transfer did not end');
}

const data = (r: Received) => (r.packet.op === 'data' ? Buffer.from(r.packet.data) : Buffer.alloc(0));

describe('tftp pump: one transfer on the wire', () => {
  it('sends one block per ACK and ends on the ACK of the short final block', async () => {
    const s = await session(pattern(1100));
    expect(s.blocks([await s.next()])).toEqual([1]);
    s.send({ op: 'ack', block: 1 });
    expect(s.blocks([await s.next()])).toEqual([2]);
    s.send({ op: 'ack', block: 2 });
    const last = await s.next();
    expect(last.packet).toMatchObject({ op: 'data', block: 3, data: pattern(1100).subarray(1024) });
    s.send({ op: 'ack', block: 3 });
    expect(await s.t.done).toEqual({ result: 'ok', bytes: 1100, dataBytesSent: 1100, retransmissions: 0, dropped: {} });
    expect(s.t.counters()).toBeNull();
  });

  it('ends a file that fills its last block with an empty DATA block', async () => {
    const s = await session(pattern(512));
    await s.next();
    s.send({ op: 'ack', block: 1 });
    expect((await s.next()).packet).toEqual({ op: 'data', block: 2, data: Buffer.alloc(0) });
    s.send({ op: 'ack', block: 2 });
    expect(await s.t.done).toMatchObject({ result: 'ok', bytes: 512 });
  });

  it("never answers a duplicate ACK with data (Sorcerer's Apprentice)", async () => {
    const s = await session(pattern(5000));
    await s.next();
    s.send({ op: 'ack', block: 1 });
    expect(s.blocks([await s.next()])).toEqual([2]);
    s.send({ op: 'ack', block: 1 });
    s.send({ op: 'ack', block: 1 });
    s.send({ op: 'ack', block: 60000 }); // Nothing in flight has that number either.
    expect(await s.c.collect(150)).toEqual([]);
    s.send({ op: 'ack', block: 2 });
    expect(s.blocks([await s.next()])).toEqual([3]);
    expect(s.t.counters()).toEqual({ dataBytesSent: 1536, retransmissions: 0, dropped: {} });
  });

  it('sends only the OACK until the client acknowledges it with ACK 0', async () => {
    const oack = encodePacket({ op: 'oack', options: [{ name: 'windowsize', value: '4' }] });
    const s = await session(pattern(10 * 512), { windowsize: 4, oack });
    expect((await s.next()).packet).toEqual({ op: 'oack', options: [{ name: 'windowsize', value: '4' }] });
    expect(await s.c.collect(100)).toEqual([]);
    s.send({ op: 'ack', block: 0 });
    expect(s.blocks([await s.next(), await s.next(), await s.next(), await s.next()])).toEqual([1, 2, 3, 4]);
  });

  it('restarts the window after the last block the client has in order (RFC 7440)', async () => {
    const s = await session(pattern(20 * 512), { windowsize: 4 });
    expect(s.blocks([await s.next(), await s.next(), await s.next(), await s.next()])).toEqual([1, 2, 3, 4]);
    s.send({ op: 'ack', block: 2 }); // 3 went missing: resend from 3.
    expect(s.blocks([await s.next(), await s.next(), await s.next(), await s.next()])).toEqual([3, 4, 5, 6]);
    expect(s.t.counters()).toMatchObject({ retransmissions: 2 });
    s.send({ op: 'ack', block: 6 });
    expect(s.blocks([await s.next(), await s.next(), await s.next(), await s.next()])).toEqual([7, 8, 9, 10]);
  });

  it('rolls block numbers over from 65535 to 0 and keeps going', async () => {
    const content = pattern(8 * 70_000 + 3);
    // 70,001 packets: a bare socket that ACKs each full window from its message handler.
    const peer = createSocket('udp4');
    cleanups.push(() => peer.close());
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
    const t = startPump({ ...spec(peer.address().port), data: content, size: content.length, blksize: 8, windowsize: 64 });
    const received: Buffer[] = [];
    const wire: number[] = [];
    peer.on('message', (msg) => {
      const block = msg.readUInt16BE(2);
      received.push(msg.subarray(4));
      wire.push(block);
      if (wire.length % 64 === 0 || msg.length < 12) peer.send(encodePacket({ op: 'ack', block }), t.port, '127.0.0.1');
    });
    expect(await t.done).toMatchObject({ result: 'ok', bytes: content.length, retransmissions: 0 });
    expect(Buffer.concat(received)).toEqual(content);
    const wrap = wire.indexOf(65535);
    expect(wire.slice(wrap, wrap + 3)).toEqual([65535, 0, 1]);
    expect(wire).toHaveLength(70_001);
  });

  it('retransmits on timeout with exponential backoff, then gives up', async () => {
    const s = await session(pattern(100), { timeoutMs: 300, retries: 2 });
    const first = await s.next();
    const second = await s.next();
    const third = await s.next();
    expect(s.blocks([first, second, third])).toEqual([1, 1, 1]);
    // Deadlines never fire early, so only lower bounds; each less what this side's event loop
    // may have taken to read a packet late on a loaded machine (a constant wait would give 300).
    const late = 100;
    expect(second.at - first.at).toBeGreaterThanOrEqual(300 - late);
    expect(third.at - second.at).toBeGreaterThanOrEqual(600 - late); // The second wait is twice as long.
    expect(await s.t.done).toEqual({ result: 'timeout', bytes: 0, detail: 'no ACK after 2 retransmissions', dataBytesSent: 300, retransmissions: 2, dropped: {} });
    expect(performance.now() - third.at).toBeGreaterThanOrEqual(1200 - late);
    expect(await s.c.collect(50)).toEqual([]);
  });

  it('lets a client that repeats its ACK cut the backoff short, but never below one timeout per resend', async () => {
    const s = await session(pattern(2000), { timeoutMs: 300 });
    await s.next();
    s.send({ op: 'ack', block: 1 });
    await s.next();
    const resent = await s.next(); // First resend of 2; the next would wait 600 ms.
    expect(s.blocks([resent])).toEqual([2]);
    s.send({ op: 'ack', block: 1 }); // "Still waiting for 2": due 300 ms after the last resend.
    s.send({ op: 'ack', block: 1 });
    const again = await s.next();
    expect(s.blocks([again])).toEqual([2]);
    expect(again.at - resent.at).toBeGreaterThanOrEqual(295);
    expect(again.at - resent.at).toBeLessThan(550);
  });

  it('ends as aborted-by-client when the client answers the OACK with ERROR', async () => {
    const oack = encodePacket({ op: 'oack', options: [{ name: 'tsize', value: '100' }] });
    const s = await session(pattern(100), { oack, timeoutMs: 50 });
    await s.next();
    s.send({ op: 'error', code: 8, message: 'tsize probe' });
    expect(await s.t.done).toMatchObject({ result: 'aborted-by-client', bytes: 0, detail: 'client error 8: tsize probe' });
    expect(await s.c.collect(150)).toEqual([]);
  });

  it('tells the client and records an error when aborted by the server', async () => {
    const s = await session(pattern(100));
    await s.next();
    s.t.abort('server shutting down');
    expect((await s.next()).packet).toEqual({ op: 'error', code: 0, message: 'server shutting down' });
    expect(await s.t.done).toMatchObject({ result: 'error', detail: 'server shutting down' });
  });

  it('answers a stranger with ERROR 5 (never an ERROR with an ERROR) and carries on', async () => {
    const s = await session(pattern(1000));
    await s.next();
    const stranger = await RawClient.open();
    cleanups.push(() => stranger.close());
    stranger.send({ op: 'ack', block: 1 }, s.t.port);
    expect((await stranger.receive()).packet).toEqual({ op: 'error', code: 5, message: 'unknown transfer ID' });
    stranger.send({ op: 'error', code: 0, message: 'confused' }, s.t.port);
    expect(await stranger.collect(100)).toEqual([]);
    s.send({ op: 'ack', block: 1 });
    s.send({ op: 'ack', block: (await s.next()).packet.op === 'data' ? 2 : -1 });
    expect(await s.t.done).toMatchObject({ result: 'ok', bytes: 1000, dropped: { 'unknown-tid': 2 } });
  });

  it('drops and counts malformed or unexpected packets from the client without disturbing the transfer', async () => {
    const s = await session(pattern(600));
    await s.next();
    s.send(Buffer.from([0]));
    s.send(Buffer.from([0, 4, 0]));
    s.send(Buffer.from([0, 4, 0, 1, 9]));
    s.send(Buffer.from([0, 5, 0, 1, 0x41]));
    s.send(Buffer.from([0, 5, 0, 1, 0x41, 0, 0x42]));
    s.send({ op: 'data', block: 1, data: Buffer.from('x') });
    s.send(Buffer.from([0, 9, 0, 0]));
    expect(await s.c.collect(100)).toEqual([]);
    s.send({ op: 'ack', block: 1 });
    await s.next();
    s.send({ op: 'ack', block: 2 });
    expect((await s.t.done).dropped).toEqual({ 'too-short': 2, 'trailing-bytes': 2, 'unterminated-string': 1, 'unexpected-opcode': 1, 'unknown-opcode': 1 });
  });

  it('converts netascii on the fly, a CR LF split across two blocks included', async () => {
    const text = Buffer.from('a'.repeat(511) + '\n' + 'b\r'.repeat(300) + 'end\n');
    const s = await session(text, { netascii: true });
    const parts: Buffer[] = [];
    for (let block = 1; block < 10; block++) {
      const r = await s.next();
      parts.push(data(r));
      s.send({ op: 'ack', block });
      if (data(r).length < 512) break;
    }
    expect(parts[0]!.subarray(510)).toEqual(Buffer.from('a\r'));
    expect(parts[1]![0]).toBe(0x0a);
    expect(Buffer.concat(parts)).toEqual(netascii(text));
    expect(await s.t.done).toMatchObject({ result: 'ok', bytes: netascii(text).length });
  });

  it('converts any bytes to netascii, for any block size', async () => {
    // Bytes drawn so that about half are CR or LF, the ones that expand.
    const textish = fc.uint8Array({ maxLength: 1500 }).map((raw) => Buffer.from(raw.map((b) => [0x0a, 0x0d, b, b][b % 4]!)));
    await fc.assert(
      fc.asyncProperty(textish, fc.integer({ min: 8, max: 700 }), async (text, blksize) => {
        const s = await session(text, { netascii: true, blksize, windowsize: 4 });
        expect(await fetch(s, blksize, 4)).toEqual(netascii(text));
        expect(await s.t.done).toMatchObject({ result: 'ok' });
      }),
      { numRuns: 30 },
    );
  });
});

describe('tftp pump: files', () => {
  it('streams a file in order through read-ahead chunks, for any size, block and chunk', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 40_000 }), fc.integer({ min: 8, max: 3000 }), fc.integer({ min: 1, max: 8 }), async (size, blksize, chunkBlocks) => {
        const content = randomBytes(size);
        const file = join(dir.path, `f${n++}`);
        writeFileSync(file, content);
        const s = await session({ file }, { size, blksize, windowsize: 4, readAhead: blksize * chunkBlocks });
        expect(await fetch(s, blksize, 4)).toEqual(content);
        expect(await s.t.done).toMatchObject({ result: 'ok', bytes: size });
      }),
      { numRuns: 25 },
    );
  });

  it('converts a file to netascii across read-ahead chunks', async () => {
    const text = Buffer.from('line\n'.repeat(5000) + 'b\r' + 'end');
    const file = join(dir.path, 'text');
    writeFileSync(file, text);
    const s = await session({ file }, { size: text.length, netascii: true, readAhead: 4096 });
    expect(await fetch(s, 512, 1)).toEqual(netascii(text));
  });

  it('ends where the file now ends when it shrinks mid-transfer', async () => {
    const file = join(dir.path, 'shrinking');
    writeFileSync(file, Buffer.alloc(200_000, 7));
    const s = await session({ file }, { size: 200_000, readAhead: 16_384 });
    const first = await s.next();
    truncateSync(file, 50_000);
    s.send({ op: 'ack', block: 1 });
    const rest = await fetch(s, 512, 1);
    expect(data(first).length + rest.length).toBe(50_000);
    expect(rest.equals(Buffer.alloc(rest.length, 7))).toBe(true);
  });

  it('sends ERROR and ends when the file cannot be read', async () => {
    const s = await session({ file: dir.path }, { size: 4096 }); // read(2) on a directory: EISDIR.
    expect((await s.next()).packet).toEqual({ op: 'error', code: 0, message: 'read error' });
    expect(await s.t.done).toMatchObject({ result: 'error', detail: expect.stringMatching(/^read failed: Is a directory/) });
  });

  it('refuses an invalid spec with a TypeError and an unbindable host with its errno', async () => {
    const c = await RawClient.open();
    cleanups.push(() => c.close());
    const base: PumpSpec = { ...spec(c.port), data: Buffer.alloc(1), size: 1 };
    expect(() => startPump({ ...base, blksize: 4 })).toThrow(TypeError);
    expect(() => startPump({ ...base, data: null })).toThrow(TypeError); // Neither a file nor bytes.
    expect(() => startPump({ ...base, fd: 0 })).toThrow(TypeError); // Both.
    expect(() => startPump({ ...base, peerAddress: 'not-an-address' })).toThrow(/IP literals/);
    expect(() => startPump({ ...base, host: '192.0.2.1' })).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL' }));
  });
});
