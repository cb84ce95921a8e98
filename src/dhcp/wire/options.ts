// The DHCP option table (RFC 2132 and friends) as data, the value kinds it uses,
// and small readers for options whose raw bytes carry their own structure.
//
// The codec walks the wire generically and looks each code up here: adding an
// option means adding a row to DHCP_OPTIONS, not writing a parser.
import { checkText, checkUint, decodeText, formatIp, ipNumber, nonEmpty, readU16, readU32, room, u8List, u16List, walkTlv, type Tlv } from './bytes.js';

/** DHCP message types, option 53 (RFC 2132 §9.6, RFC 3203, RFC 4388, RFC 6926, RFC 7724). */
export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
  FORCERENEW: 9,
  LEASEQUERY: 10,
  LEASEUNASSIGNED: 11,
  LEASEUNKNOWN: 12,
  LEASEACTIVE: 13,
  BULKLEASEQUERY: 14,
  LEASEQUERYDONE: 15,
  ACTIVELEASEQUERY: 16,
  LEASEQUERYSTATUS: 17,
  TLS: 18,
} as const;
export type DhcpMessageType = (typeof DhcpMessageType)[keyof typeof DhcpMessageType];
export type DhcpMessageTypeName = keyof typeof DhcpMessageType;

const MESSAGE_TYPE_NAMES = new Map<number, DhcpMessageTypeName>(
  Object.entries(DhcpMessageType).map(([name, value]) => [value, name as DhcpMessageTypeName]),
);

/** 'DISCOVER', 'ACK', ...: handy for logs and metrics labels. */
export function messageTypeName(type: DhcpMessageType): DhcpMessageTypeName {
  return MESSAGE_TYPE_NAMES.get(type) as DhcpMessageTypeName;
}

/** Option 94, client network device interface (RFC 4578 §2.2): type 1 is UNDI. */
export interface ClientNdi {
  type: number;
  major: number;
  minor: number;
}

interface KindValues {
  ip: string;
  ipList: string[];
  u16: number;
  u32: number;
  text: string;
  bytes: Uint8Array;
  u8List: number[];
  u16List: number[];
  messageType: DhcpMessageType;
  ndi: ClientNdi;
}
type OptionKind = keyof KindValues;

interface OptionSpec {
  code: number;
  name: string;
  kind: OptionKind;
  /** Stricter than the kind's own minimum, where the RFC says so. */
  minLength?: number;
}

/**
 * Every option livery understands by name. Order matters: it is the order the
 * encoder writes them in (message type first, as every client and server does,
 * then by code). Anything not listed here round-trips as a raw `Tlv`.
 * 0 (pad), 52 (overload) and 255 (end) are framing, handled by the codec itself.
 */
export const DHCP_OPTIONS = [
  { code: 53, name: 'messageType', kind: 'messageType' },
  { code: 1, name: 'subnetMask', kind: 'ip' },
  { code: 3, name: 'routers', kind: 'ipList' },
  { code: 6, name: 'dnsServers', kind: 'ipList' },
  { code: 12, name: 'hostname', kind: 'text' },
  { code: 15, name: 'domainName', kind: 'text' },
  { code: 28, name: 'broadcastAddress', kind: 'ip' },
  { code: 42, name: 'ntpServers', kind: 'ipList' },
  { code: 43, name: 'vendorSpecific', kind: 'bytes' }, // see pxe.ts for PXE's sub-options
  { code: 50, name: 'requestedIp', kind: 'ip' },
  { code: 51, name: 'leaseTime', kind: 'u32' },
  { code: 54, name: 'serverId', kind: 'ip' },
  { code: 55, name: 'parameterRequestList', kind: 'u8List' },
  { code: 56, name: 'message', kind: 'text' },
  { code: 57, name: 'maxMessageSize', kind: 'u16' },
  { code: 58, name: 'renewalTime', kind: 'u32' },
  { code: 59, name: 'rebindingTime', kind: 'u32' },
  { code: 60, name: 'vendorClassId', kind: 'text' },
  { code: 61, name: 'clientId', kind: 'bytes', minLength: 2 }, // RFC 2132 §9.14: type + id
  { code: 66, name: 'tftpServerName', kind: 'text' },
  { code: 67, name: 'bootfileName', kind: 'text' },
  { code: 77, name: 'userClass', kind: 'bytes' }, // raw: iPXE does not use RFC 3004 form, see userClasses()
  { code: 82, name: 'relayAgentInfo', kind: 'bytes' }, // echoed back verbatim, see relayAgentInfo()
  { code: 93, name: 'clientArch', kind: 'u16List' }, // values in pxe.ts ClientArch
  { code: 94, name: 'clientNdi', kind: 'ndi' },
  { code: 97, name: 'clientUuid', kind: 'bytes' }, // see pxe.ts clientUuid()
  { code: 175, name: 'ipxe', kind: 'bytes' }, // iPXE encapsulated options, see pxe.ts ipxeInfo()
] as const satisfies readonly OptionSpec[];

type KnownOption = (typeof DHCP_OPTIONS)[number];
export type DhcpOptionName = KnownOption['name'];

/** Named, typed options of a packet; every one optional. */
export type DhcpOptions = { [S in KnownOption as S['name']]?: KindValues[S['kind']] };

export const OPTION_BY_CODE: ReadonlyMap<number, OptionSpec & { name: DhcpOptionName }> = new Map(
  DHCP_OPTIONS.map((spec) => [spec.code, spec]),
);

// --- value kinds ------------------------------------------------------------

interface KindCodec<T> {
  /** The value, or undefined when the bytes do not have this kind's shape. */
  decode(data: Uint8Array): T | undefined;
  /**
   * Writes the value's bytes into `out` at `at` and says how many: straight into the
   * encoder's buffer, with no array per option. Throws RangeError naming `label` when the
   * value cannot be encoded or does not fit.
   */
  write(value: T, out: Buffer, at: number, label: string): number;
}

const KINDS: { [K in OptionKind]: KindCodec<KindValues[K]> } = {
  ip: {
    decode: (d) => (d.length === 4 ? formatIp(d) : undefined),
    write: (v, out, at, label) => {
      room(out, at, 4, label);
      out.writeUInt32BE(ipNumber(v, label), at);
      return 4;
    },
  },
  ipList: {
    decode: (d) => (d.length >= 4 && d.length % 4 === 0 ? Array.from({ length: d.length / 4 }, (_, i) => formatIp(d, i * 4)) : undefined),
    write: (v, out, at, label) => {
      room(out, at, nonEmpty(v, label).length * 4, label);
      for (let i = 0; i < v.length; i++) out.writeUInt32BE(ipNumber(v[i], label), at + i * 4);
      return v.length * 4;
    },
  },
  u16: {
    decode: (d) => (d.length === 2 ? readU16(d, 0) : undefined),
    write: (v, out, at, label) => {
      room(out, at, 2, label);
      out.writeUInt16BE(checkUint(v, 0xffff, label), at);
      return 2;
    },
  },
  u32: {
    decode: (d) => (d.length === 4 ? readU32(d, 0) : undefined),
    write: (v, out, at, label) => {
      room(out, at, 4, label);
      out.writeUInt32BE(checkUint(v, 0xffffffff, label), at);
      return 4;
    },
  },
  text: {
    decode: (d) => (d.length >= 1 ? decodeText(d) : undefined),
    write: (v, out, at, label) => {
      // Three bytes per UTF-16 unit is UTF-8's worst case, so a string that passes is never cut short.
      room(out, at, checkText(v, label).length * 3, label);
      return out.write(v, at, 'utf8');
    },
  },
  bytes: {
    // A copy: the packet's buffer is not the value's to keep.
    decode: (d) => (d.length >= 1 ? d.slice() : undefined),
    write: (v, out, at, label) => {
      if (!(v instanceof Uint8Array)) throw new RangeError(`${label}: must be a Uint8Array`);
      room(out, at, v.length, label);
      out.set(v, at);
      return v.length;
    },
  },
  u8List: {
    decode: (d) => (d.length >= 1 ? u8List(d) : undefined),
    write: (v, out, at, label) => {
      room(out, at, nonEmpty(v, label).length, label);
      for (let i = 0; i < v.length; i++) out[at + i] = checkUint(v[i], 0xff, label);
      return v.length;
    },
  },
  u16List: {
    decode: (d) => (d.length >= 2 && d.length % 2 === 0 ? u16List(d) : undefined),
    write: (v, out, at, label) => {
      room(out, at, nonEmpty(v, label).length * 2, label);
      for (let i = 0; i < v.length; i++) out.writeUInt16BE(checkUint(v[i], 0xffff, label), at + i * 2);
      return v.length * 2;
    },
  },
  messageType: {
    decode: (d) => (d.length === 1 && MESSAGE_TYPE_NAMES.has(d[0]) ? (d[0] as DhcpMessageType) : undefined),
    write: (v, out, at, label) => {
      if (!MESSAGE_TYPE_NAMES.has(v)) throw new RangeError(`${label}: unknown message type ${String(v)}`);
      room(out, at, 1, label);
      out[at] = v;
      return 1;
    },
  },
  ndi: {
    decode: (d) => (d.length === 3 ? { type: d[0], major: d[1], minor: d[2] } : undefined),
    write: (v, out, at, label) => {
      room(out, at, 3, label);
      out[at] = checkUint(v.type, 0xff, label);
      out[at + 1] = checkUint(v.major, 0xff, label);
      out[at + 2] = checkUint(v.minor, 0xff, label);
      return 3;
    },
  },
};

// Error labels made once: encoding a reply must not build a string per option.
const LABELS = new Map<number, string>(DHCP_OPTIONS.map((spec) => [spec.code, `option ${spec.code} ${spec.name}`]));
const label = (spec: OptionSpec): string => LABELS.get(spec.code) ?? `option ${spec.code} ${spec.name}`;

/** Decodes one known option's (already reassembled) value; undefined when malformed. */
export function decodeOptionValue(spec: OptionSpec, data: Uint8Array): unknown {
  if (data.length < (spec.minLength ?? 0)) return undefined;
  return (KINDS[spec.kind] as KindCodec<unknown>).decode(data);
}

/** Writes one known option's value (any length: the codec splits long ones) at `at`; returns its length. */
export function writeOptionValue(spec: OptionSpec, value: unknown, out: Buffer, at: number): number {
  const length = (KINDS[spec.kind] as KindCodec<unknown>).write(value, out, at, label(spec));
  if (length < Math.max(1, spec.minLength ?? 0)) throw new RangeError(`${label(spec)}: value too short (${length} bytes)`);
  return length;
}

// --- readers for options with inner structure --------------------------------

/**
 * The user classes of option 77. RFC 3004 encodes each class as <len><bytes>
 * (udhcpc -x sends that); iPXE and many firmwares send one bare string ("iPXE").
 * Bytes that do not parse exactly as RFC 3004 are therefore one bare class.
 */
export function userClasses(packet: { options: DhcpOptions }): string[] {
  const raw = packet.options.userClass;
  if (raw === undefined) return [];
  const classes: string[] = [];
  for (let at = 0; at < raw.length; at += 1 + raw[at]) {
    const len = raw[at];
    if (len === 0 || at + 1 + len > raw.length) return [decodeText(raw)];
    classes.push(decodeText(raw.subarray(at + 1, at + 1 + len)));
  }
  return classes;
}

export const RelayAgentSubOption = { CIRCUIT_ID: 1, REMOTE_ID: 2 } as const;

/** Views into the packet's option bytes. */
export interface RelayAgentInfo {
  circuitId?: Uint8Array;
  remoteId?: Uint8Array;
  /** Every sub-option in wire order, including the two above. */
  subOptions: Tlv[];
}

/** Sub-options of option 82 (RFC 3046); undefined when absent or malformed. The server echoes the raw option, not this. */
export function relayAgentInfo(packet: { options: DhcpOptions }): RelayAgentInfo | undefined {
  const raw = packet.options.relayAgentInfo;
  if (raw === undefined) return undefined;
  const walk = walkTlv(raw, false);
  if (!walk.ok) return undefined;
  const find = (code: number): Uint8Array | undefined => walk.entries.find((e) => e.code === code)?.data;
  const info: RelayAgentInfo = { subOptions: walk.entries };
  const circuitId = find(RelayAgentSubOption.CIRCUIT_ID);
  const remoteId = find(RelayAgentSubOption.REMOTE_ID);
  if (circuitId !== undefined) info.circuitId = circuitId;
  if (remoteId !== undefined) info.remoteId = remoteId;
  return info;
}
