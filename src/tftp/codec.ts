/**
 * TFTP packet codec (RFC 1350, RFC 2347 option extension). Pure: no I/O, and `decodePacket`
 * never throws: any byte sequence yields either a packet or a typed reason for rejecting it.
 *
 * Strings (file names, modes, option names and values, error messages) are carried as latin1 so
 * every byte maps to exactly one character and back; the protocol itself is 8-bit "netascii".
 */

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 and RFC 2347 error codes. */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

/** One option as it appears on the wire; order and case are preserved. */
export interface TftpOption {
  name: string;
  value: string;
}

export type TftpPacket =
  | { op: 'rrq' | 'wrq'; filename: string; mode: string; options: TftpOption[] }
  | { op: 'data'; block: number; data: Uint8Array }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: TftpOption[] };

export type MalformedReason =
  | 'too-short'
  | 'unknown-opcode'
  | 'unterminated-string'
  | 'missing-mode'
  | 'option-without-value'
  | 'trailing-bytes';

export type DecodeResult =
  | { ok: true; packet: TftpPacket }
  /** `opcode` is the opcode field when the packet had one, so a server can tell a broken request from noise. */
  | { ok: false; reason: MalformedReason; opcode: number | null };

const HEADER = 4;

/** A module-level function rather than a closure in decodePacket: that runs for every ACK. */
function malformed(reason: MalformedReason, opcode: number): DecodeResult {
  return { ok: false, reason, opcode };
}

export function decodePacket(bytes: Uint8Array): DecodeResult {
  if (bytes.length < 2) return { ok: false, reason: 'too-short', opcode: null };
  const opcode = (bytes[0]! << 8) | bytes[1]!;
  switch (opcode) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const strings = splitStrings(bytes, 2);
      if (strings === null) return malformed('unterminated-string', opcode);
      if (strings.length < 2) return malformed('missing-mode', opcode);
      const options = pairUp(strings.slice(2));
      if (options === null) return malformed('option-without-value', opcode);
      const op = opcode === Opcode.RRQ ? 'rrq' : 'wrq';
      return { ok: true, packet: { op, filename: strings[0]!, mode: strings[1]!, options } };
    }
    case Opcode.DATA:
      if (bytes.length < HEADER) return malformed('too-short', opcode);
      return { ok: true, packet: { op: 'data', block: readU16(bytes, 2), data: bytes.subarray(HEADER) } };
    case Opcode.ACK:
      if (bytes.length < HEADER) return malformed('too-short', opcode);
      if (bytes.length > HEADER) return malformed('trailing-bytes', opcode);
      return { ok: true, packet: { op: 'ack', block: readU16(bytes, 2) } };
    case Opcode.ERROR: {
      if (bytes.length < HEADER + 1) return malformed('too-short', opcode);
      const strings = splitStrings(bytes, HEADER);
      if (strings === null) return malformed('unterminated-string', opcode);
      if (strings.length !== 1) return malformed('trailing-bytes', opcode);
      return { ok: true, packet: { op: 'error', code: readU16(bytes, 2), message: strings[0]! } };
    }
    case Opcode.OACK: {
      const strings = splitStrings(bytes, 2);
      if (strings === null) return malformed('unterminated-string', opcode);
      const options = pairUp(strings);
      if (options === null) return malformed('option-without-value', opcode);
      return { ok: true, packet: { op: 'oack', options } };
    }
    default:
      return malformed('unknown-opcode', opcode);
  }
}

/**
 * Encodes a packet. Strings must be latin1 without NUL and numbers must fit 16 bits; violating
 * that is a programming error, so it throws (RangeError from the Buffer writers) rather than
 * silently producing a different packet.
 */
export function encodePacket(packet: TftpPacket): Buffer {
  switch (packet.op) {
    case 'rrq':
    case 'wrq':
      return withStrings(packet.op === 'rrq' ? Opcode.RRQ : Opcode.WRQ, [
        packet.filename,
        packet.mode,
        ...packet.options.flatMap((o) => [o.name, o.value]),
      ]);
    case 'data':
      return encodeData(packet.block, packet.data);
    case 'ack': {
      const out = Buffer.allocUnsafe(HEADER);
      out.writeUInt16BE(Opcode.ACK, 0);
      out.writeUInt16BE(packet.block, 2);
      return out;
    }
    case 'error': {
      const message = Buffer.from(packet.message, 'latin1');
      const out = Buffer.allocUnsafe(HEADER + message.length + 1);
      out.writeUInt16BE(Opcode.ERROR, 0);
      out.writeUInt16BE(packet.code, 2);
      message.copy(out, HEADER);
      out[out.length - 1] = 0;
      return out;
    }
    case 'oack':
      return withStrings(Opcode.OACK, packet.options.flatMap((o) => [o.name, o.value]));
  }
}

/** DATA is the hot path of every transfer, so it gets a direct entry point without a packet object. */
export function encodeData(block: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + data.length);
  out.writeUInt16BE(Opcode.DATA, 0);
  out.writeUInt16BE(block, 2);
  out.set(data, HEADER);
  return out;
}

export function encodeError(code: number, message: string): Buffer {
  return encodePacket({ op: 'error', code, message });
}

function readU16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

/** Splits NUL-terminated strings from `start` to the end; null when the last one lacks its NUL. */
function splitStrings(bytes: Uint8Array, start: number): string[] | null {
  const strings: string[] = [];
  let from = start;
  while (from < bytes.length) {
    const nul = bytes.indexOf(0, from);
    if (nul === -1) return null;
    strings.push(Buffer.from(bytes.buffer, bytes.byteOffset + from, nul - from).toString('latin1'));
    from = nul + 1;
  }
  return strings;
}

function pairUp(strings: string[]): TftpOption[] | null {
  if (strings.length % 2 !== 0) return null;
  const options: TftpOption[] = [];
  for (let i = 0; i < strings.length; i += 2) options.push({ name: strings[i]!, value: strings[i + 1]! });
  return options;
}

function withStrings(opcode: number, strings: string[]): Buffer {
  const parts = strings.map((s) => Buffer.from(s, 'latin1'));
  const out = Buffer.allocUnsafe(2 + parts.reduce((n, p) => n + p.length + 1, 0));
  out.writeUInt16BE(opcode, 0);
  let at = 2;
  for (const part of parts) {
    part.copy(out, at);
    at += part.length;
    out[at++] = 0;
  }
  return out;
}
