// What PXE clients say about themselves (options 93, 97, 175) and the PXE vendor
// sub-options a boot server puts in option 43 (PXE 2.1 specification §2.4.1).

import { decodeError, type DhcpDecodeError } from './errors.js';
import { checkUint, decodeText, encodeText, formatIp, ipBytes, nonEmpty, plainView, readU16, u16Bytes, walkTlv, writeTlv, type Tlv } from './bytes.js';
import { type DhcpOptions } from './options.js';

/**
 * Client system architectures of option 93 (RFC 4578 §2.1 and the IANA registry
 * it created). Firmware predating RFC 4578's errata sends 9 for x64 UEFI, so a
 * server should treat UEFI_EBC like UEFI_X64.
 */
export const ClientArch = {
  BIOS_X86: 0,
  UEFI_IA32: 6,
  UEFI_X64: 7,
  UEFI_EBC: 9,
  UEFI_ARM32: 10,
  UEFI_ARM64: 11,
  UEFI_HTTP_IA32: 15,
  UEFI_HTTP_X64: 16,
  UEFI_HTTP_ARM32: 18,
  UEFI_HTTP_ARM64: 19,
  BIOS_HTTP_X86: 20,
  UEFI_RISCV64: 27,
  UEFI_HTTP_RISCV64: 28,
} as const;

/**
 * Option 97 (RFC 4578 §2.3, type 0 + 16-byte GUID) as the canonical UUID string,
 * or undefined when absent or not that shape. PXE firmware sends the SMBIOS byte
 * order, whose first three fields are little-endian: the iPXE and OVMF fixtures
 * carry QEMU's `-uuid 6c697665-7279-4000-...` as 65 76 69 6c 79 72 00 40 ...
 * Swapping them back gives the string dmidecode, the BMC and the hypervisor show.
 */
export function clientUuid(packet: { options: DhcpOptions }): string | undefined {
  const raw = packet.options.clientUuid;
  if (raw === undefined || raw.length !== 17 || raw[0] !== 0) return undefined;
  const g = raw.subarray(1);
  const hex = (bytes: number[]): string => Buffer.from(bytes).toString('hex');
  return [
    hex([g[3], g[2], g[1], g[0]]),
    hex([g[5], g[4]]),
    hex([g[7], g[6]]),
    hex([...g.subarray(8, 10)]),
    hex([...g.subarray(10, 16)]),
  ].join('-');
}

// --- iPXE's option 175 -------------------------------------------------------

/** Feature sub-options of option 175 (iPXE include/ipxe/features.h); each value is a version byte. */
const IPXE_FEATURES: ReadonlyMap<number, string> = new Map([
  [0x10, 'pxe-ext'],
  [0x11, 'iscsi'],
  [0x12, 'aoe'],
  [0x13, 'http'],
  [0x14, 'https'],
  [0x15, 'tftp'],
  [0x16, 'ftp'],
  [0x17, 'dns'],
  [0x18, 'bzimage'],
  [0x19, 'multiboot'],
  [0x1a, 'slam'],
  [0x1b, 'srp'],
  [0x20, 'nbi'],
  [0x21, 'pxe'],
  [0x22, 'elf'],
  [0x23, 'comboot'],
  [0x24, 'efi'],
  [0x25, 'fcoe'],
  [0x26, 'vlan'],
  [0x27, 'menu'],
  [0x28, 'sdi'],
  [0x29, 'nfs'],
]);
const IPXE_VERSION = 0xeb;

export interface IpxeInfo {
  /** Named features the client was built with ('http', 'https', 'efi', ...), in wire order. */
  features: string[];
  /** 'major.minor.patch' from sub-option 235, if sent. */
  version?: string;
  /** Every sub-option in wire order, named or not (bus id 177 and the like). */
  subOptions: Tlv[];
}

/**
 * Reads iPXE's encapsulated option 175; undefined when absent or malformed.
 * Its presence (together with user class "iPXE") tells a chainloaded iPXE from
 * the firmware's own PXE client.
 */
export function ipxeInfo(packet: { options: DhcpOptions }): IpxeInfo | undefined {
  const raw = packet.options.ipxe;
  if (raw === undefined) return undefined;
  const walk = walkTlv(raw, true);
  if (!walk.ok) return undefined;
  const info: IpxeInfo = { features: [], subOptions: walk.entries };
  for (const { code, data } of walk.entries) {
    const feature = IPXE_FEATURES.get(code);
    if (feature !== undefined) info.features.push(feature);
    if (code === IPXE_VERSION && data.length === 3) info.version = data.join('.');
  }
  return info;
}

// --- PXE vendor options in option 43 -------------------------------------------

export const PxeSubOption = {
  DISCOVERY_CONTROL: 6,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const;

/** Bits of PXE_DISCOVERY_CONTROL (sub-option 6). */
export const PxeDiscoveryControl = {
  DISABLE_BROADCAST: 0x01,
  DISABLE_MULTICAST: 0x02,
  SERVER_LIST_ONLY: 0x04,
  /** Boot the file named in this offer at once: no menu, no boot server discovery. */
  BOOTFILE_DIRECT: 0x08,
} as const;

export interface PxeBootServer {
  type: number;
  addresses: string[];
}
export interface PxeBootMenuItem {
  type: number;
  description: string;
}
export interface PxeMenuPrompt {
  /** Seconds; 0 boots the first item at once, 255 waits for the user. */
  timeout: number;
  prompt: string;
}
export interface PxeBootItem {
  type: number;
  layer: number;
}

export interface PxeVendorOptions {
  discoveryControl?: number;
  bootServers?: PxeBootServer[];
  bootMenu?: PxeBootMenuItem[];
  menuPrompt?: PxeMenuPrompt;
  bootItem?: PxeBootItem;
  /** Other sub-options (MTFTP 1-5, multicast address 7, ...), raw and in order. */
  unknown: Tlv[];
}

export type PxeDecodeOutcome = { ok: true; options: PxeVendorOptions } | { ok: false; error: DhcpDecodeError };

const VENDOR_SPECIFIC = 43;

/** Repeated records of `type(2) len(1) body(len)`, where len is a byte count or (boot servers) an address count. */
function readRecords<T>(data: Uint8Array, bodySize: (count: number) => number, make: (type: number, body: Uint8Array, count: number) => T): T[] | undefined {
  const records: T[] = [];
  for (let at = 0; at < data.length; ) {
    if (at + 3 > data.length) return undefined;
    const count = data[at + 2];
    const end = at + 3 + bodySize(count);
    if (end > data.length) return undefined;
    records.push(make(readU16(data, at), data.subarray(at + 3, end), count));
    at = end;
  }
  return records.length > 0 ? records : undefined;
}

/** Decodes one known sub-option; undefined when the bytes have the wrong shape. */
const SUB_OPTION_READERS: Record<number, (data: Uint8Array) => Partial<PxeVendorOptions> | undefined> = {
  [PxeSubOption.DISCOVERY_CONTROL]: (d) => (d.length === 1 ? { discoveryControl: d[0] } : undefined),
  [PxeSubOption.BOOT_SERVERS]: (d) => {
    const servers = readRecords(d, (n) => n * 4, (type, body, n) => ({ type, addresses: Array.from({ length: n }, (_, i) => formatIp(body, i * 4)) }));
    return servers && { bootServers: servers };
  },
  [PxeSubOption.BOOT_MENU]: (d) => {
    const items = readRecords(d, (n) => n, (type, body) => ({ type, description: decodeText(body) }));
    return items && { bootMenu: items };
  },
  [PxeSubOption.MENU_PROMPT]: (d) => (d.length >= 1 ? { menuPrompt: { timeout: d[0], prompt: decodeText(d.subarray(1)) } } : undefined),
  [PxeSubOption.BOOT_ITEM]: (d) => (d.length === 4 ? { bootItem: { type: readU16(d, 0), layer: readU16(d, 2) } } : undefined),
};

/** Decodes the PXE sub-options in option 43's bytes. Never throws; END is optional (the option's length bounds it). */
export function decodePxeVendorOptions(data: Uint8Array): PxeDecodeOutcome {
  const walk = walkTlv(plainView(data), true);
  if (!walk.ok) return decodeError('option-overrun', `option 43 sub-option ${walk.code} runs past the end`, VENDOR_SPECIFIC);
  const options: PxeVendorOptions = { unknown: [] };
  const seen = new Set<number>();
  for (const { code, data: value } of walk.entries) {
    const read = SUB_OPTION_READERS[code];
    if (read === undefined) {
      options.unknown.push({ code, data: value.slice() });
      continue;
    }
    const decoded = seen.has(code) ? undefined : read(value);
    if (decoded === undefined) return decodeError('bad-option', `option 43 sub-option ${code} is malformed or repeated`, VENDOR_SPECIFIC);
    seen.add(code);
    Object.assign(options, decoded);
  }
  return { ok: true, options };
}

/** One `type(2) len(1) body` record of sub-options 8 and 9. */
function record(type: number, count: number, body: number[], what: string): number[] {
  return [...u16Bytes(checkUint(type, 0xffff, `${what} type`)), checkUint(count, 0xff, `${what} length`), ...body];
}

/** Encodes PXE sub-options for option 43: known ones in PxeSubOption order, then unknown ones, then END. Throws RangeError on unencodable values. */
export function encodePxeVendorOptions(options: Omit<PxeVendorOptions, 'unknown'> & { unknown?: Tlv[] }): Uint8Array {
  const { discoveryControl, bootServers, bootMenu, menuPrompt, bootItem, unknown = [] } = options;
  const entries: Tlv[] = [];
  const add = (code: number, bytes: number[]): void => {
    entries.push({ code, data: Uint8Array.from(bytes) });
  };
  if (discoveryControl !== undefined) add(PxeSubOption.DISCOVERY_CONTROL, [checkUint(discoveryControl, 0xff, 'discoveryControl')]);
  if (bootServers !== undefined) {
    add(PxeSubOption.BOOT_SERVERS, nonEmpty(bootServers, 'bootServers').flatMap((server) => {
      const addresses = server.addresses.flatMap((ip) => [...ipBytes(ip, 'bootServers address')]);
      return record(server.type, server.addresses.length, addresses, 'bootServers');
    }));
  }
  if (bootMenu !== undefined) {
    add(PxeSubOption.BOOT_MENU, nonEmpty(bootMenu, 'bootMenu').flatMap((item) => {
      const text = encodeText(item.description, 'bootMenu description');
      return record(item.type, text.length, [...text], 'bootMenu');
    }));
  }
  if (menuPrompt !== undefined) {
    add(PxeSubOption.MENU_PROMPT, [checkUint(menuPrompt.timeout, 0xff, 'menuPrompt timeout'), ...encodeText(menuPrompt.prompt, 'menuPrompt prompt')]);
  }
  if (bootItem !== undefined) {
    const type = checkUint(bootItem.type, 0xffff, 'bootItem type');
    const layer = checkUint(bootItem.layer, 0xffff, 'bootItem layer');
    add(PxeSubOption.BOOT_ITEM, [...u16Bytes(type), ...u16Bytes(layer)]);
  }
  for (const entry of unknown) {
    if (entry.code in SUB_OPTION_READERS || entry.code === 0 || entry.code === 255) {
      throw new RangeError(`option 43 sub-option ${entry.code} is known or reserved`);
    }
    entries.push(entry);
  }
  return writeTlv(entries, true, 'option 43 sub-option');
}
