import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodePacket, encodePacket, type TftpPacket } from '../src/tftp/codec.js';
import { sourceFor, type ByteSource } from '../src/tftp/source.js';
import { Transfer, type TransferOutcome, type TransferSettings } from '../src/tftp/transfer.js';

/** Drives one Transfer with a fake wire: everything it sends is decoded and kept in order. */
function harness(data: Buffer, settings: Partial<TransferSettings> = {}, source?: ByteSource) {
  const sent: { packet: TftpPacket; retransmission: boolean }[] = [];
  const outcomes: TransferOutcome[] = [];
  const transfer = new Transfer(
    source ?? sourceFor({ kind: 'buffer', data }, false, 65536),
    { blksize: 512, windowsize: 1, timeoutMs: 1000, retries: 5, oack: null, ...settings },
    {
      send: (packet, _payload, retransmission) => {
        const decoded = decodePacket(packet);
        if (!decoded.ok) throw new Error(`transfer sent a malformed packet: ${decoded.reason}`);
        sent.push({ packet: decoded.packet, retransmission });
      },
      finished: (o) => outcomes.push(o),
    },
  );
  /** Packets sent since the last call. */
  const drain = () => sent.splice(0);
  const blocks = (items: { packet: TftpPacket }[]) => items.map(({ packet }) => (packet.op === 'data' ? packet.block : packet.op));
  return { transfer, drain, blocks, outcomes };
}

const pattern = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('tftp transfer state machine', () => {
  it('sends one block per ACK and ends on the ACK of the short final block', () => {
    const { transfer, drain, blocks, outcomes } = harness(pattern(1100));
    transfer.start();
    expect(blocks(drain())).toEqual([1]);
    transfer.onAck(1);
    expect(blocks(drain())).toEqual([2]);
    transfer.onAck(2);
    const last = drain();
    expect(blocks(last)).toEqual([3]);
    expect(last[0]!.packet).toMatchObject({ op: 'data', data: pattern(1100).subarray(1024) });
    transfer.onAck(3);
    expect(outcomes).toEqual([{ result: 'ok', bytes: 1100 }]);
    expect(drain()).toEqual([]);
  });

  it('ends a file that fills its last block with an empty DATA block', () => {
    const { transfer, drain, blocks, outcomes } = harness(pattern(512));
    transfer.start();
    transfer.onAck(1);
    const tail = drain();
    expect(blocks(tail)).toEqual([1, 2]);
    expect(tail[1]!.packet).toMatchObject({ op: 'data', data: Buffer.alloc(0) });
    transfer.onAck(2);
    expect(outcomes).toEqual([{ result: 'ok', bytes: 512 }]);
  });

  it('never answers a duplicate ACK with data (Sorcerer\'s Apprentice)', () => {
    const { transfer, drain, blocks } = harness(pattern(5000));
    transfer.start();
    transfer.onAck(1);
    expect(blocks(drain())).toEqual([1, 2]);
    transfer.onAck(1);
    transfer.onAck(1);
    transfer.onAck(60000); // Nothing in flight has that number either.
    expect(drain()).toEqual([]);
    transfer.onAck(2);
    expect(blocks(drain())).toEqual([3]);
  });

  it('sends only the OACK until the client acknowledges it with ACK 0', () => {
    const oack = encodePacket({ op: 'oack', options: [{ name: 'windowsize', value: '4' }] });
    const { transfer, drain, blocks } = harness(pattern(10 * 512), { windowsize: 4, oack });
    transfer.start();
    expect(blocks(drain())).toEqual(['oack']);
    transfer.onAck(0);
    expect(blocks(drain())).toEqual([1, 2, 3, 4]);
  });

  it('restarts the window after the last block the client has in order (RFC 7440)', () => {
    const { transfer, drain, blocks } = harness(pattern(20 * 512), { windowsize: 4 });
    transfer.start();
    expect(blocks(drain())).toEqual([1, 2, 3, 4]);
    transfer.onAck(2); // 3 went missing: resend from 3.
    const resent = drain();
    expect(blocks(resent)).toEqual([3, 4, 5, 6]);
    expect(resent.map((s) => s.retransmission)).toEqual([true, true, false, false]);
    transfer.onAck(6);
    expect(blocks(drain())).toEqual([7, 8, 9, 10]);
  });

  it('rolls block numbers over from 65535 to 0 and keeps going', () => {
    const data = pattern(8 * 70_000 + 3);
    const { transfer, drain, outcomes } = harness(data, { blksize: 8, windowsize: 64 });
    const received: Buffer[] = [];
    const wireBlocks: number[] = [];
    transfer.start();
    for (let round = 0; round < 2000 && outcomes.length === 0; round++) {
      const window = drain();
      for (const { packet } of window) {
        if (packet.op !== 'data') throw new Error(`unexpected ${packet.op}`);
        received.push(Buffer.from(packet.data));
        wireBlocks.push(packet.block);
      }
      transfer.onAck((window.at(-1)!.packet as { block: number }).block);
    }
    expect(outcomes).toEqual([{ result: 'ok', bytes: data.length }]);
    expect(Buffer.concat(received)).toEqual(data);
    const wrap = wireBlocks.indexOf(65535);
    expect(wireBlocks.slice(wrap, wrap + 3)).toEqual([65535, 0, 1]);
    expect(wireBlocks.length).toBe(70_001);
  });

  it('retransmits on timeout with exponential backoff, then gives up', () => {
    const { transfer, drain, blocks, outcomes } = harness(pattern(100), { timeoutMs: 1000, retries: 2 });
    transfer.start();
    expect(blocks(drain())).toEqual([1]);
    vi.advanceTimersByTime(999);
    expect(drain()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(drain()).toEqual([{ packet: expect.objectContaining({ op: 'data', block: 1 }), retransmission: true }]);
    vi.advanceTimersByTime(1999); // The second wait is twice as long.
    expect(drain()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(blocks(drain())).toEqual([1]);
    vi.advanceTimersByTime(3999);
    expect(outcomes).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(outcomes).toEqual([expect.objectContaining({ result: 'timeout', bytes: 0 })]);
    expect(drain()).toEqual([]);
  });

  it('lets a client that repeats its ACK cut the backoff short, but never below one timeout per resend', () => {
    const { transfer, drain, blocks } = harness(pattern(2000), { timeoutMs: 1000 });
    transfer.start();
    transfer.onAck(1);
    expect(blocks(drain())).toEqual([1, 2]);
    vi.advanceTimersByTime(1000);
    expect(blocks(drain())).toEqual([2]); // First resend; the next would wait 2000 ms.
    vi.advanceTimersByTime(300);
    transfer.onAck(1); // "Still waiting for 2": due 1000 ms after the last resend, not 2000.
    transfer.onAck(1);
    vi.advanceTimersByTime(699);
    expect(drain()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(blocks(drain())).toEqual([2]);
    transfer.onAck(2);
    expect(blocks(drain())).toEqual([3]);
    vi.advanceTimersByTime(999); // Progress resets the timer to the base timeout.
    expect(drain()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(blocks(drain())).toEqual([3]);
  });

  it('ends as aborted-by-client when the client answers the OACK with ERROR', () => {
    const oack = encodePacket({ op: 'oack', options: [{ name: 'tsize', value: '100' }] });
    const { transfer, drain, outcomes } = harness(pattern(100), { oack });
    transfer.start();
    drain();
    transfer.onClientError(8, 'tsize probe');
    expect(outcomes).toEqual([{ result: 'aborted-by-client', bytes: 0, detail: 'client error 8: tsize probe' }]);
    vi.advanceTimersByTime(60_000);
    expect(drain()).toEqual([]);
  });

  it('tells the client and records an error when aborted by the server', () => {
    const { transfer, drain, outcomes } = harness(pattern(100));
    transfer.start();
    drain();
    transfer.abort('server shutting down');
    expect(drain().map((s) => s.packet)).toEqual([{ op: 'error', code: 0, message: 'server shutting down' }]);
    expect(outcomes).toEqual([expect.objectContaining({ result: 'error' })]);
  });

  it('sends ERROR and ends when the source cannot be read', async () => {
    const failing: ByteSource = {
      take: () => null,
      fill: () => Promise.reject(new Error('EIO')),
      close: async () => {},
    };
    const { transfer, drain, outcomes } = harness(Buffer.alloc(0), {}, failing);
    transfer.start();
    await vi.waitFor(() => expect(outcomes).toHaveLength(1));
    expect(outcomes[0]).toMatchObject({ result: 'error', detail: 'read failed: EIO' });
    expect(drain().map((s) => s.packet)).toEqual([{ op: 'error', code: 0, message: 'read error' }]);
  });
});
