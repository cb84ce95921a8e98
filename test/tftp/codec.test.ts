import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePacket, encodePacket, type TftpPacket } from '../../src/tftp/codec.js';

const bytes = (...parts: (number[] | string)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

/** latin1 strings without NUL: exactly what fits in a NUL-terminated TFTP string. */
const wireString = fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const option = fc.record({ name: wireString, value: wireString });
const u16 = fc.integer({ min: 0, max: 0xffff });

const packetArb: fc.Arbitrary<TftpPacket> = fc.oneof(
  fc.record({ op: fc.constantFrom('rrq' as const, 'wrq' as const), filename: wireString, mode: wireString, options: fc.array(option, { maxLength: 6 }) }),
  fc.record({ op: fc.constant('data' as const), block: u16, data: fc.uint8Array({ maxLength: 600 }) }),
  fc.record({ op: fc.constant('ack' as const), block: u16 }),
  fc.record({ op: fc.constant('error' as const), code: u16, message: wireString }),
  fc.record({ op: fc.constant('oack' as const), options: fc.array(option, { maxLength: 6 }) }),
);

/** Byte-level damage of the kind a network or an attacker produces. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
);

function mutate(input: Buffer, m: { kind: 'flip' | 'truncate' | 'insert' | 'delete'; at: number; value?: number }): Buffer {
  const at = input.length === 0 ? 0 : m.at % input.length;
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(input);
      if (out.length > 0) out[at] = m.value!;
      return out;
    }
    case 'truncate':
      return input.subarray(0, at);
    case 'insert':
      return Buffer.concat([input.subarray(0, at), Buffer.from([m.value!]), input.subarray(at)]);
    default:
      return Buffer.concat([input.subarray(0, at), input.subarray(at + 1)]);
  }
}

describe('tftp codec: known packets', () => {
  it('decodes a PXE-style RRQ with options, keeping their order and spelling', () => {
    const wire = bytes([0, 1], '/undionly.kpxe\x00octet\x00tsize\x000\x00BlkSize\x001468\x00');
    expect(decodePacket(wire)).toEqual({
      ok: true,
      packet: {
        op: 'rrq',
        filename: '/undionly.kpxe',
        mode: 'octet',
        options: [
          { name: 'tsize', value: '0' },
          { name: 'BlkSize', value: '1468' },
        ],
      },
    });
    expect(encodePacket({ op: 'rrq', filename: '/undionly.kpxe', mode: 'octet', options: [{ name: 'tsize', value: '0' }, { name: 'BlkSize', value: '1468' }] })).toEqual(wire);
  });

  it('encodes DATA, ACK, ERROR and OACK as RFC 1350/2347 lay them out', () => {
    expect(encodePacket({ op: 'data', block: 0x1234, data: Buffer.from('hi') })).toEqual(bytes([0, 3, 0x12, 0x34], 'hi'));
    expect(encodePacket({ op: 'ack', block: 65535 })).toEqual(bytes([0, 4, 0xff, 0xff]));
    expect(encodePacket({ op: 'error', code: 2, message: 'access violation' })).toEqual(bytes([0, 5, 0, 2], 'access violation\x00'));
    expect(encodePacket({ op: 'oack', options: [{ name: 'blksize', value: '1468' }] })).toEqual(bytes([0, 6], 'blksize\x001468\x00'));
  });

  it('decodes a DATA packet with an empty payload (the end of a file that fills its last block)', () => {
    expect(decodePacket(bytes([0, 3, 0, 9]))).toEqual({ ok: true, packet: { op: 'data', block: 9, data: Buffer.alloc(0) } });
  });

  it.each([
    ['empty', bytes([]), 'too-short', null],
    ['one byte', bytes([0]), 'too-short', null],
    ['opcode 7', bytes([0, 7, 1, 2]), 'unknown-opcode', 7],
    ['opcode 0', bytes([0, 0]), 'unknown-opcode', 0],
    ['RRQ without terminating NUL', bytes([0, 1], 'file\x00octet'), 'unterminated-string', 1],
    ['RRQ without mode', bytes([0, 1], 'file\x00'), 'missing-mode', 1],
    ['RRQ with an option lacking its value', bytes([0, 1], 'file\x00octet\x00blksize\x00'), 'option-without-value', 1],
    ['WRQ that is just an opcode', bytes([0, 2]), 'missing-mode', 2],
    ['short ACK', bytes([0, 4, 0]), 'too-short', 4],
    ['ACK with trailing bytes', bytes([0, 4, 0, 1, 0]), 'trailing-bytes', 4],
    ['short DATA', bytes([0, 3, 1]), 'too-short', 3],
    ['ERROR without message', bytes([0, 5, 0, 1]), 'too-short', 5],
    ['ERROR with unterminated message', bytes([0, 5, 0, 1], 'oops'), 'unterminated-string', 5],
    ['ERROR with two strings', bytes([0, 5, 0, 1], 'a\x00b\x00'), 'trailing-bytes', 5],
    ['OACK with a dangling name', bytes([0, 6], 'tsize\x00'), 'option-without-value', 6],
  ])('rejects %s', (_what, wire, reason, opcode) => {
    expect(decodePacket(wire)).toEqual({ ok: false, reason, opcode });
  });
});

describe('tftp codec: properties', () => {
  it('decode(encode(p)) is p for every packet', () => {
    fc.assert(
      fc.property(packetArb, (packet) => {
        const decoded = decodePacket(encodePacket(packet));
        expect(decoded.ok).toBe(true);
        if (decoded.ok && decoded.packet.op === 'data' && packet.op === 'data') {
          expect(Buffer.from(decoded.packet.data)).toEqual(Buffer.from(packet.data));
          expect(decoded.packet.block).toBe(packet.block);
        } else if (decoded.ok) {
          expect(decoded.packet).toEqual(packet);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('decode never throws, and whatever it accepts re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (wire) => {
        const decoded = decodePacket(wire);
        if (decoded.ok) expect(encodePacket(decoded.packet)).toEqual(Buffer.from(wire));
      }),
      { numRuns: 5000 },
    );
  });

  it('survives mutated valid packets (flipped, cut, grown, shrunk) without throwing', () => {
    fc.assert(
      fc.property(packetArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (packet, mutations) => {
        const wire = mutations.reduce((b, m) => mutate(b, m), encodePacket(packet));
        const decoded = decodePacket(wire);
        if (decoded.ok) expect(encodePacket(decoded.packet)).toEqual(wire);
        else expect(typeof decoded.reason).toBe('string');
      }),
      { numRuns: 5000 },
    );
  });
});
