/**
 * Byte-level helpers of the DHCP wire format: addresses, text, integers and the
 * code/length/value framing that options, PXE option 43 and relay sub-options share.
 * Every helper refuses what would not survive a round trip (RangeError naming the field).
 */
import { parseIpv4 } from '../../net/ipv4.js';

/** A raw code/length/value entry: unknown options, and sub-options of encapsulated ones. */
export interface Tlv {
  code: number;
  data: Uint8Array;
}

// In a /u regex a surrogate code unit only matches when it is unpaired.
const LONE_SURROGATE = /\p{Surrogate}/u;

/** A plain Uint8Array over the same memory, so that .slice() copies even when given a Buffer (whose slice does not). */
export function plainView(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function formatIp(bytes: Uint8Array, offset = 0): string {
  // A client's packet has three of its four header addresses unset.
  if (bytes[offset] === 0 && bytes[offset + 1] === 0 && bytes[offset + 2] === 0 && bytes[offset + 3] === 0) return '0.0.0.0';
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** Dotted-quad to its 32-bit number. Only the canonical form is accepted (no leading zeros, no spaces), so decode(encode(x)) === x. */
export function ipNumber(text: string, label: string): number {
  const ip = typeof text === 'string' ? parseIpv4(text) : null;
  if (ip === null || text.length !== text.trim().length) throw new RangeError(`${label}: not a dotted-quad IPv4 address: ${String(text)}`);
  return ip;
}

/** Dotted-quad to 4 bytes, as ipNumber() accepts it. */
export function ipBytes(text: string, label: string): Uint8Array {
  const ip = ipNumber(text, label);
  return Uint8Array.of(ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255);
}

export function decodeText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
}

/** Throws unless `text` is a string that survives a UTF-8 round trip (lone surrogates do not). */
export function checkText(text: string, label: string): string {
  if (typeof text !== 'string' || LONE_SURROGATE.test(text)) throw new RangeError(`${label}: not a well-formed string`);
  return text;
}

/** UTF-8 bytes of a string; lone surrogates are refused because they would not survive a round trip. */
export function encodeText(text: string, label: string): Uint8Array {
  return Buffer.from(checkText(text, label), 'utf8');
}

export function checkUint(value: number, max: number, label: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${label}: ${String(value)} is not an integer in 0..${max}`);
  return value;
}

export function nonEmpty<T>(list: readonly T[], label: string): readonly T[] {
  if (!Array.isArray(list) || list.length === 0) throw new RangeError(`${label}: must be a non-empty list`);
  return list;
}

/** Throws unless `bytes` more fit in `out` from `at`. */
export function room(out: Buffer, at: number, bytes: number, label: string): void {
  if (at + bytes > out.length) throw new RangeError(`${label}: the options do not fit in ${out.length} bytes`);
}

export const readU16 = (b: Uint8Array, at: number): number => (b[at] << 8) | b[at + 1];
export const readU32 = (b: Uint8Array, at: number): number => readU16(b, at) * 0x10000 + readU16(b, at + 2);
export const u16Bytes = (value: number): number[] => [value >>> 8, value & 0xff];

// Plain loops: Array.from() over a typed array or with a map function is several times slower,
// and every client packet carries a parameter request list.
export function u8List(data: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) out.push(data[i]);
  return out;
}

export function u16List(data: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push(readU16(data, i));
  return out;
}

// --- code/length/value walking, shared by the codec and encapsulated options -----

export type TlvWalk = { ok: true; entries: Tlv[]; ended: boolean } | { ok: false; code: number; offset: number };

/**
 * Splits `area` into code/length/value entries (data are views into `area`).
 * With `framing` (DHCP options, PXE option 43, iPXE option 175) code 0 is a
 * one-byte pad and 255 ends the area, anything after it ignored; without it
 * (RFC 3046 relay sub-options) every code carries a length byte.
 * Fails when an entry's length byte or data would run past the end.
 */
export function walkTlv(area: Uint8Array, framing: boolean): TlvWalk {
  const entries: Tlv[] = [];
  let at = 0;
  while (at < area.length) {
    const code = area[at];
    if (framing && code === 0) {
      at += 1;
      continue;
    }
    if (framing && code === 255) return { ok: true, entries, ended: true };
    if (at + 1 >= area.length || at + 2 + area[at + 1] > area.length) return { ok: false, code, offset: at };
    entries.push({ code, data: area.subarray(at + 2, at + 2 + area[at + 1]) });
    at += 2 + area[at + 1];
  }
  return { ok: true, entries, ended: false };
}

/** Concatenates entries as code/length/value, each at most 255 bytes, plus END when `end`. */
export function writeTlv(entries: readonly Tlv[], end: boolean, what: string): Uint8Array {
  const parts: number[] = [];
  for (const { code, data } of entries) {
    checkUint(code, 0xff, `${what} code`);
    if (data.length > 255) throw new RangeError(`${what} ${code}: ${data.length} bytes exceeds 255`);
    parts.push(code, data.length, ...data);
  }
  if (end) parts.push(255);
  return Uint8Array.from(parts);
}
