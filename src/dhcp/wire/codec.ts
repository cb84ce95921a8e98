/**
 * DHCPv4 / BOOTP wire codec (RFC 951, RFC 2131, RFC 2132, RFC 3396). Pure: no I/O.
 *
 * decodeDhcp never throws; it returns a packet or a typed error whose `kind` is a
 * metrics label. It is strict wherever every real client we captured (dhclient,
 * udhcpc, iPXE BIOS and EFI, EDK2/OVMF PXE: test/fixtures/dhcp) is exact, because
 * a deviation there means corruption or an attack, not a quirky client:
 *  - shorter than header + magic cookie ('truncated'), op not 1/2 ('bad-op'),
 *    hlen > 16 or Ethernet with hlen != 6 ('bad-hlen'), wrong cookie ('bad-cookie');
 *  - an option running past the end of its area ('option-overrun');
 *  - no END option: every client terminates its options ('missing-end');
 *  - a known option of the wrong length or shape, e.g. message type not one byte
 *    or unknown, an address list not a multiple of 4 ('bad-option');
 *  - option 52 not one byte of 1..3, or an sname/file field it points at that
 *    overruns, lacks END (RFC 2131 §4.1 requires one) or overloads again ('bad-overload').
 * It tolerates what real clients or the RFCs allow: bytes after END (dhclient pads
 * to 300 with zeros), packets under 300 bytes, pad options anywhere, repeated
 * options (concatenated, RFC 3396), unknown options of any length (kept raw, in
 * order), sname/file without a NUL terminator, and reserved flag bits (ignored).
 *
 * encodeDhcp always writes a valid packet: END, zero padding to the 300-byte
 * BOOTP minimum, options in DHCP_OPTIONS order then unknown ones, long options
 * split per RFC 3396. It throws RangeError for a value it cannot encode
 * (a programming error, not a wire condition).
 */

import { decodeError, type DhcpDecodeError } from './errors.js';
import { checkText, checkUint, decodeText, formatIp, ipNumber, plainView, walkTlv, type Tlv } from './bytes.js';
import { DHCP_OPTIONS, OPTION_BY_CODE, decodeOptionValue, writeOptionValue, type DhcpOptions } from './options.js';

export const BootOp = { REQUEST: 1, REPLY: 2 } as const;
export type BootOp = (typeof BootOp)[keyof typeof BootOp];

export interface DhcpPacket {
  op: BootOp;
  /** Hardware type: 1 is Ethernet. */
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  /** The BROADCAST flag: the client cannot receive unicast before it has an address. */
  broadcast: boolean;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of the field, kept for the round trip and for echoing in replies. */
  chaddr: Uint8Array;
  /** 'aa:bb:cc:dd:ee:ff' for Ethernet (htype 1, hlen 6), otherwise null. Derived from chaddr. */
  mac: string | null;
  /** null when option 52 says the field carries options instead of a name. */
  sname: string | null;
  /** null when option 52 says the field carries options instead of a file name. */
  file: string | null;
  options: DhcpOptions;
  /** Options not in DHCP_OPTIONS, in order of first appearance. */
  unknownOptions: Tlv[];
}

/**
 * What encodeDhcp needs: a DhcpPacket (so a decoded request can be re-encoded)
 * or a reply built by hand, where everything but op, xid, chaddr and options
 * defaults to zero / empty / Ethernet. chaddr may be shorter than 16 bytes.
 * Setting sname or file to null offers that field for options (option 52).
 */
export type DhcpPacketInit = Partial<Omit<DhcpPacket, 'op' | 'xid' | 'chaddr' | 'options' | 'mac'>> &
  Pick<DhcpPacket, 'op' | 'xid' | 'chaddr' | 'options'>;

export type DhcpDecodeOutcome = { ok: true; packet: DhcpPacket } | { ok: false; error: DhcpDecodeError };

// Field offsets and sizes of the fixed BOOTP header (RFC 951 / RFC 2131 §2).
const SNAME = { at: 44, size: 64 } as const;
const FILE = { at: 108, size: 128 } as const;
const CHADDR = { at: 28, size: 16 } as const;
const COOKIE_AT = 236;
const OPTIONS_AT = 240;
const MAGIC_COOKIE = 0x63825363;
/** RFC 951 fixed size; RFC 1542 §3.4: relays and old clients drop shorter packets. */
const MIN_PACKET_SIZE = 300;
/** Options room in the 576-byte message every client must accept (RFC 2131 §2): 576 - 20 IP - 8 UDP - 240. */
const MIN_OPTIONS_SPACE = 308;
const OPTION_OVERLOAD = 52;
const OVERLOAD_FILE = 1;
const OVERLOAD_SNAME = 2;

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function formatMac(bytes: Uint8Array): string {
  let mac = bytes.length > 0 ? HEX[bytes[0]] : '';
  for (let i = 1; i < bytes.length; i++) mac += ':' + HEX[bytes[i]];
  return mac;
}

/** 'aa:bb:cc:dd:ee:ff' (or '-' separated, any case) to a 16-byte chaddr field. */
export function macToChaddr(mac: string): Uint8Array {
  if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(mac)) throw new RangeError(`not a MAC address: ${mac}`);
  const chaddr = new Uint8Array(CHADDR.size);
  chaddr.set(mac.split(/[:-]/).map((h) => parseInt(h, 16)));
  return chaddr;
}

// --- decode -----------------------------------------------------------------

/** A C string field: up to the first NUL, or the whole field if there is none. */
function readCString(field: Uint8Array): string {
  if (field[0] === 0) return ''; // the usual sname and file of a client's packet
  const nul = field.indexOf(0);
  return decodeText(nul === -1 ? field : field.subarray(0, nul));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** RFC 2131 §4.1: options continue in 'file', then in 'sname'. */
const OVERLOAD_AREAS = [
  [OVERLOAD_FILE, FILE, 'file'],
  [OVERLOAD_SNAME, SNAME, 'sname'],
] as const;

export function decodeDhcp(buf: Uint8Array): DhcpDecodeOutcome {
  // Slices of a plain view are owned copies; the packet must not alias a reused receive buffer.
  const bytes = plainView(buf);
  if (bytes.length < OPTIONS_AT) return decodeError('truncated', `${bytes.length} bytes, need at least ${OPTIONS_AT}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [op, htype, hlen] = [bytes[0], bytes[1], bytes[2]];
  if (op !== BootOp.REQUEST && op !== BootOp.REPLY) return decodeError('bad-op', `op ${op}`);
  if (hlen > CHADDR.size || (htype === 1 && hlen !== 6)) return decodeError('bad-hlen', `htype ${htype} with hlen ${hlen}`);
  if (view.getUint32(COOKIE_AT) !== MAGIC_COOKIE) return decodeError('bad-cookie', `cookie 0x${view.getUint32(COOKIE_AT).toString(16)}`);

  const main = walkTlv(bytes.subarray(OPTIONS_AT), true);
  if (!main.ok) return decodeError('option-overrun', `option ${main.code} at ${OPTIONS_AT + main.offset} runs past the end`, main.code);
  if (!main.ended) return decodeError('missing-end', 'options area has no END option');

  const overloadParts = main.entries.filter((e) => e.code === OPTION_OVERLOAD);
  let overload = 0;
  if (overloadParts.length > 0) {
    const value = concat(overloadParts.map((e) => e.data));
    if (value.length !== 1 || value[0] < 1 || value[0] > 3) return decodeError('bad-overload', `option 52 value ${formatBytes(value)}`, OPTION_OVERLOAD);
    overload = value[0];
  }
  const entries = main.entries.filter((e) => e.code !== OPTION_OVERLOAD);
  for (const [flag, field, name] of OVERLOAD_AREAS) {
    if ((overload & flag) === 0) continue;
    const walk = walkTlv(bytes.subarray(field.at, field.at + field.size), true);
    if (!walk.ok) return decodeError('bad-overload', `option ${walk.code} in ${name} runs past the field`, walk.code);
    if (!walk.ended) return decodeError('bad-overload', `options in ${name} have no END option`, OPTION_OVERLOAD);
    if (walk.entries.some((e) => e.code === OPTION_OVERLOAD)) return decodeError('bad-overload', `option 52 inside ${name}`, OPTION_OVERLOAD);
    entries.push(...walk.entries);
  }

  // RFC 3396: every instance of a code is one value, concatenated in order.
  const parts = new Map<number, Uint8Array[]>();
  for (const { code, data } of entries) {
    const list = parts.get(code);
    if (list === undefined) parts.set(code, [data]);
    else list.push(data);
  }
  const options: Record<string, unknown> = {};
  const unknownOptions: Tlv[] = [];
  for (const [code, chunks] of parts) {
    // A view into the packet when the option came in one piece: values that keep bytes copy them.
    const data = chunks.length === 1 ? chunks[0] : concat(chunks);
    const spec = OPTION_BY_CODE.get(code);
    if (spec === undefined) {
      unknownOptions.push({ code, data: data.slice() });
      continue;
    }
    const value = decodeOptionValue(spec, data);
    if (value === undefined) return decodeError('bad-option', `option ${code} ${spec.name}: malformed value ${formatBytes(data)}`, code);
    options[spec.name] = value;
  }

  const chaddr = bytes.slice(CHADDR.at, CHADDR.at + CHADDR.size);
  return {
    ok: true,
    packet: {
      op,
      htype,
      hlen,
      hops: bytes[3],
      xid: view.getUint32(4),
      secs: view.getUint16(8),
      broadcast: (view.getUint16(10) & 0x8000) !== 0,
      ciaddr: formatIp(bytes, 12),
      yiaddr: formatIp(bytes, 16),
      siaddr: formatIp(bytes, 20),
      giaddr: formatIp(bytes, 24),
      chaddr,
      mac: htype === 1 && hlen === 6 ? formatMac(chaddr.subarray(0, 6)) : null,
      sname: overload & OVERLOAD_SNAME ? null : readCString(bytes.subarray(SNAME.at, SNAME.at + SNAME.size)),
      file: overload & OVERLOAD_FILE ? null : readCString(bytes.subarray(FILE.at, FILE.at + FILE.size)),
      options: options as DhcpOptions,
      unknownOptions,
    },
  };
}

/** Bytes as hex for error messages, cut short so a hostile packet cannot bloat logs. */
function formatBytes(data: Uint8Array): string {
  const hex = Buffer.from(data.subarray(0, 16)).toString('hex');
  return data.length > 16 ? `${hex}… (${data.length} bytes)` : `0x${hex}`;
}

// --- encode -----------------------------------------------------------------

const OPTION_BY_NAME = new Map(DHCP_OPTIONS.map((spec, rank) => [spec.name as string, { spec, rank }]));

/**
 * Where option values are written before they are laid out. Encoding is synchronous, so one
 * buffer serves every call: a reply costs no array per option. Its size is a datagram's.
 */
const SCRATCH = Buffer.alloc(65_536);

/** One option's value (or an RFC 3396 piece of it, at most 255 bytes) as bytes in SCRATCH. */
interface Piece {
  code: number;
  at: number;
  length: number;
}

/** The option pieces to write, in order: known options in table order, then unknown ones. */
function optionPieces(options: DhcpOptions, unknownOptions: readonly Tlv[]): Piece[] {
  // Walking the object's own keys beats probing all 27 names: replies come in many shapes,
  // and a keyed load by every name goes megamorphic.
  const values: (Piece & { rank: number })[] = [];
  let used = 0;
  for (const name in options) {
    const value = options[name as keyof DhcpOptions];
    const known = OPTION_BY_NAME.get(name);
    if (value === undefined || known === undefined) continue;
    const piece = { rank: known.rank, code: known.spec.code, at: used, length: writeOptionValue(known.spec, value, SCRATCH, used) };
    used += piece.length;
    // Insertion in table order: a reply holds a dozen options, fewer than a sort is worth.
    let i = values.length;
    values.push(piece);
    while (i > 0 && values[i - 1].rank > piece.rank) {
      values[i] = values[i - 1];
      i--;
    }
    values[i] = piece;
  }
  const pieces: Piece[] = [];
  const seen = new Set<number>();
  const add = (code: number, at: number, length: number) => {
    if (length <= 255) pieces.push({ code, at, length });
    else for (let from = 0; from < length; from += 255) pieces.push({ code, at: at + from, length: Math.min(255, length - from) });
  };
  for (const v of values) add(v.code, v.at, v.length);
  for (const { code, data } of unknownOptions) {
    checkUint(code, 0xff, 'unknown option code');
    // Pad, end, overload and known codes have meanings of their own; a repeated code
    // would be merged with the first on decode (RFC 3396), so neither can round-trip.
    if (code === 0 || code === 255 || code === OPTION_OVERLOAD || OPTION_BY_CODE.has(code) || seen.has(code)) {
      throw new RangeError(`unknown option code ${code} is reserved, known or repeated`);
    }
    if (!(data instanceof Uint8Array)) throw new RangeError(`unknown option ${code}: data must be a Uint8Array`);
    if (used + data.length > SCRATCH.length) throw new RangeError(`unknown option ${code}: the options do not fit in ${SCRATCH.length} bytes`);
    seen.add(code);
    SCRATCH.set(data, used);
    add(code, used, data.length);
    used += data.length;
  }
  return pieces;
}

/** One place options are written to: the options field, or an overloaded sname/file. */
class Area {
  readonly pieces: Piece[] = [];
  /** Bytes of the pieces so far, each with its code and length byte. */
  length = 0;
  constructor(
    readonly name: 'options' | 'file' | 'sname',
    readonly capacity: number,
  ) {}

  /** Whether a piece of `bytes` data fits while leaving room for the END option every area needs. */
  fits(bytes: number): boolean {
    return this.length + 2 + bytes + 1 <= this.capacity;
  }

  push(piece: Piece): void {
    this.pieces.push(piece);
    this.length += 2 + piece.length;
  }

  /** Writes the area's pieces and END at `at` (the zero fill after it is the pad RFC 2131 asks for). */
  writeTo(out: Buffer, at: number): void {
    for (const { code, at: from, length } of this.pieces) {
      out[at] = code;
      out[at + 1] = length;
      SCRATCH.copy(out, at + 2, from, from + length);
      at += 2 + length;
    }
    out[at] = 255;
  }
}

/**
 * Lays pieces out in 'options', then 'file', then 'sname' (the order a decoder
 * reads them). With no field offered, 'options' simply grows; with overload it is
 * held to the 576-byte message's room, since that is why fields were offered.
 */
function layOut(pieces: Piece[], overload: number): Area[] {
  const areas = [new Area('options', overload ? MIN_OPTIONS_SPACE : Infinity)];
  if (overload & OVERLOAD_FILE) areas.push(new Area('file', FILE.size));
  if (overload & OVERLOAD_SNAME) areas.push(new Area('sname', SNAME.size));
  if (overload) {
    // The overload byte goes after every value in SCRATCH, where nothing else is.
    const at = pieces.reduce((end, p) => Math.max(end, p.at + p.length), 0);
    SCRATCH[at] = overload;
    areas[0].push({ code: OPTION_OVERLOAD, at, length: 1 });
  }
  let current = 0;
  for (const piece of pieces) {
    while (!areas[current].fits(piece.length)) {
      current += 1;
      if (current === areas.length) throw new RangeError(`options do not fit: no room left for option ${piece.code} in ${areas.map((a) => a.name).join(', ')}`);
    }
    areas[current].push(piece);
  }
  return areas;
}

function writeField(out: Buffer, field: { at: number; size: number }, value: string, what: string): void {
  if (value === '') return;
  checkText(value, what);
  // Strings keep a NUL terminator: PXE ROMs copy 'file' as a C string.
  if (value.includes('\0')) throw new RangeError(`${what}: contains NUL`);
  const length = Buffer.byteLength(value, 'utf8');
  if (length > field.size - 1) throw new RangeError(`${what}: ${length} bytes exceeds ${field.size - 1}`);
  out.write(value, field.at, 'utf8');
}

const ADDRESS_FIELDS = [
  ['ciaddr', 12],
  ['yiaddr', 16],
  ['siaddr', 20],
  ['giaddr', 24],
] as const;

export function encodeDhcp(packet: DhcpPacketInit): Buffer {
  const { op, xid, chaddr, options } = packet;
  const { htype = 1, hlen = 6, hops = 0, secs = 0, broadcast = false, sname = '', file = '', unknownOptions = [] } = packet;
  if (op !== BootOp.REQUEST && op !== BootOp.REPLY) throw new RangeError(`op: ${String(op)} is neither REQUEST nor REPLY`);
  checkUint(htype, 0xff, 'htype');
  checkUint(hlen, CHADDR.size, 'hlen');
  if (htype === 1 && hlen !== 6) throw new RangeError(`hlen: Ethernet needs 6, got ${hlen}`);
  if (!(chaddr instanceof Uint8Array) || chaddr.length > CHADDR.size) throw new RangeError('chaddr: must be a Uint8Array of at most 16 bytes');

  const overload = (file === null ? OVERLOAD_FILE : 0) | (sname === null ? OVERLOAD_SNAME : 0);
  const areas = layOut(optionPieces(options, unknownOptions), overload);
  // Zero-filled: the unused header fields, the padding after END and the 300-byte minimum.
  // allocUnsafe takes a slice of Node's shared pool; Buffer.alloc would malloc every packet.
  const out = Buffer.allocUnsafe(Math.max(MIN_PACKET_SIZE, OPTIONS_AT + areas[0].length + 1)).fill(0);
  out[0] = op;
  out[1] = htype;
  out[2] = hlen;
  out[3] = checkUint(hops, 0xff, 'hops');
  out.writeUInt32BE(checkUint(xid, 0xffffffff, 'xid'), 4);
  out.writeUInt16BE(checkUint(secs, 0xffff, 'secs'), 8);
  out.writeUInt16BE(broadcast ? 0x8000 : 0, 10);
  for (const [name, at] of ADDRESS_FIELDS) out.writeUInt32BE(ipNumber(packet[name] ?? '0.0.0.0', name), at);
  out.set(chaddr, CHADDR.at);
  for (const [value, field, name] of [[sname, SNAME, 'sname'], [file, FILE, 'file']] as const) {
    if (value === null) areas.find((a) => a.name === name)!.writeTo(out, field.at);
    else writeField(out, field, value, name);
  }
  out.writeUInt32BE(MAGIC_COOKIE, COOKIE_AT);
  areas[0].writeTo(out, OPTIONS_AT);
  return out;
}
