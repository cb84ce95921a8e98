import { formatIpv4, parseIpv4 } from '../net/ipv4.js';
import { normalizeMac } from '../net/mac.js';
import type { DiskFacts, Facts, FactsReport, NicFacts } from './types.js';

/** A report that cannot be read; `field` names the report section at fault (HTTP 400). */
export class FactsError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'FactsError';
  }
}

/**
 * Values firmware vendors leave in fields they did not fill: no value at all. `--` is what
 * dmidecode dumps shared publicly (linux-hardware.org's) carry in place of serials and UUIDs.
 */
const PLACEHOLDERS = new Set(
  ['', '--', 'not specified', 'not present', 'not provided', 'none', 'unknown', 'default string', 'to be filled by o.e.m.', 'not settable', 'system serial number', 'system product name', 'system manufacturer', '0123456789', 'n/a'],
);

function clean(value: string | undefined): string | null {
  const v = value?.trim() ?? '';
  return PLACEHOLDERS.has(v.toLowerCase()) ? null : v;
}

const CPU_VENDORS: Record<string, string> = { GenuineIntel: 'Intel', AuthenticAMD: 'AMD', HygonGenuine: 'Hygon', CentaurHauls: 'Centaur' };

/**
 * The DMI table's processor manufacturer in the names cpuinfo's vendor_id gives (Intel, AMD):
 * firmware writes "Intel", "Intel(R) Corporation" or "Advanced Micro Devices, Inc.", and a
 * selector like facts.cpu.vendor=Intel must match all of them.
 */
function dmiCpuVendor(manufacturer: string | undefined): string | null {
  const name = clean(manufacturer);
  if (name === null) return null;
  if (/^intel\b/i.test(name)) return 'Intel';
  if (/^(amd\b|advanced micro devices)/i.test(name)) return 'AMD';
  return name;
}

const UNITS: Record<string, number> = { kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** One DMI structure of dmidecode's output: its type and its `Key: value` lines (list items left out). */
interface DmiRecord {
  type: number;
  values: Record<string, string>;
}

/** dmidecode's text output → its structures, in order. */
export function parseDmidecode(text: string): DmiRecord[] {
  const records: DmiRecord[] = [];
  let current: DmiRecord | null = null;
  for (const line of text.split('\n')) {
    const handle = /^Handle 0x[0-9A-Fa-f]+, DMI type (\d+),/.exec(line);
    if (handle) {
      current = { type: Number(handle[1]), values: {} };
      records.push(current);
      continue;
    }
    const kv = /^\t([^\t:][^:]*):\s?(.*)$/.exec(line);
    if (current && kv) current.values[kv[1]!] = kv[2]!;
  }
  return records;
}

/** /proc/cpuinfo (or the lines of it livery-facts keeps) → one key/value map per logical CPU. */
function cpuinfoBlocks(text: string): Record<string, string>[] {
  const blocks: Record<string, string>[] = [];
  for (const line of text.split('\n')) {
    const m = /^([^:]+?)\s*:\s?(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'processor') blocks.push({});
    const block = blocks[blocks.length - 1];
    if (block) block[m[1]!] = m[2]!.trim();
  }
  return blocks;
}

/** livery-facts' sysfs lines (`<kind> <name> <key> <value>`) → kind → name → key → value. */
function sysfsTable(text: string): Map<string, Map<string, Record<string, string>>> {
  const table = new Map<string, Map<string, Record<string, string>>>();
  for (const line of text.split('\n')) {
    const m = /^(\S+) (\S+) (\S+) (.*)$/.exec(line);
    if (!m) continue;
    const [, kind, name, key, value] = m;
    if (!table.has(kind!)) table.set(kind!, new Map());
    const byName = table.get(kind!)!;
    byName.set(name!, { ...byName.get(name!), [key!]: value!.trim() });
  }
  return table;
}

/** `16384 MB`, `16 GB` → bytes; null for `No Module Installed` and the like. */
function dimmBytes(size: string | undefined): number | null {
  const m = /^(\d+)\s*(kB|KB|MB|GB|TB)$/.exec(size?.trim() ?? '');
  return m ? Number(m[1]) * UNITS[m[2]!]! : null;
}

/** The cores the populated processors of the DMI table have enabled (or have); 0 when it does not say. */
function dmiCores(processors: DmiRecord[]): number {
  return processors.reduce((sum, p) => sum + (wholeNumber(p.values['Core Enabled']) ?? wholeNumber(p.values['Core Count']) ?? 0), 0);
}

const wholeNumber = (v: string | undefined): number | null => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : null);

/**
 * livery-facts' report → Facts. Pure: the sections are text captured on the machine (tests feed
 * captured reports of real machines). Throws FactsError naming the section when the report lacks
 * what every machine has (a CPU, memory).
 */
export function parseFactsReport(report: FactsReport): Facts {
  const dmi = parseDmidecode(report.dmidecode ?? '');
  const ofType = (t: number) => dmi.filter((r) => r.type === t);
  const sysfs = sysfsTable(report.sysfs);
  const dmiId = sysfs.get('dmi')?.get('-') ?? {};
  const system = ofType(1)[0]?.values ?? {};
  const bios = ofType(0)[0]?.values ?? {};

  const cpus = cpuinfoBlocks(report.cpuinfo);
  if (cpus.length === 0) throw new FactsError('report.cpuinfo', 'lists no processor');
  const processors = ofType(4).filter((r) => !/Unpopulated/i.test(r.values.Status ?? ''));
  const packages = new Set(cpus.map((c) => c['physical id']).filter((v) => v !== undefined));
  const cores = new Set(cpus.filter((c) => c['core id'] !== undefined).map((c) => `${c['physical id'] ?? 0}/${c['core id']}`));
  const vendorId = cpus[0]!.vendor_id;

  const dimms = ofType(17).map((r) => dimmBytes(r.values.Size)).filter((b): b is number => b !== null);
  const memTotalKb = wholeNumber(/^MemTotal:\s*(\d+)\s*kB/m.exec(report.meminfo)?.[1]);
  if (dimms.length === 0 && memTotalKb === null) throw new FactsError('report.meminfo', 'has no MemTotal line');

  return {
    system: {
      vendor: clean(system.Manufacturer ?? dmiId.sys_vendor),
      product: clean(system['Product Name'] ?? dmiId.product_name),
      serial: clean(system['Serial Number'] ?? dmiId.product_serial),
      uuid: clean(system.UUID ?? dmiId.product_uuid)?.toLowerCase() ?? null,
    },
    firmware: {
      vendor: clean(bios.Vendor ?? dmiId.bios_vendor),
      version: clean(bios.Version ?? dmiId.bios_version),
      date: clean(bios['Release Date'] ?? dmiId.bios_date),
    },
    cpu: {
      vendor: vendorId !== undefined ? (CPU_VENDORS[vendorId] ?? vendorId) : dmiCpuVendor(processors[0]?.values.Manufacturer),
      model: clean(cpus[0]!['model name']) ?? clean(processors[0]?.values.Version),
      sockets: packages.size || processors.length || 1,
      // arm64 kernels list processors without their topology: then the DMI table's cores count.
      cores: cores.size || dmiCores(processors) || cpus.length,
      threads: cpus.length,
    },
    memory:
      dimms.length > 0
        ? { bytes: dimms.reduce((a, b) => a + b, 0), dimms: dimms.length, source: 'dimms' }
        : { bytes: memTotalKb! * 1024, dimms: null, source: 'meminfo' },
    disks: [...(sysfs.get('block') ?? new Map()).entries()].map(([name, v]) => disk(name, v)).filter((d): d is DiskFacts => d !== null),
    nics: [...(sysfs.get('net') ?? new Map()).entries()].map(([name, v]) => nic(name, v)).filter((n): n is NicFacts => n !== null),
    bmc: report['ipmi-lan']?.trim() ? bmcOf(report['ipmi-lan']) : null,
  };
}

function disk(name: string, v: Record<string, string>): DiskFacts | null {
  const sectors = wholeNumber(v.sectors);
  // An empty card reader or a drive without a medium has size 0: not a disk of this machine.
  if (!sectors) return null;
  return { name, model: clean(v.model), serial: clean(v.serial), bytes: sectors * 512, rotational: v.rotational === '1' ? true : v.rotational === '0' ? false : null };
}

function nic(name: string, v: Record<string, string>): NicFacts | null {
  const mac = normalizeMac(v.address ?? '');
  if (!mac) return null;
  const speed = wholeNumber(v.speed);
  return { name, mac, driver: clean(v.driver), speedMbps: speed && speed > 0 ? speed : null, firmware: clean(v.firmware) };
}

/** `ipmitool lan print`: the `IP Address` and `MAC Address` lines (0.0.0.0: no address configured). */
function bmcOf(text: string): Facts['bmc'] {
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(\\S+)`, 'm').exec(text)?.[1] ?? null;
  // 0 is 0.0.0.0; an address that does not parse is no address either.
  const ip = parseIpv4(field('IP Address') ?? '');
  const mac = field('MAC Address');
  return {
    address: ip ? formatIpv4(ip) : null,
    mac: mac ? normalizeMac(mac) : null,
  };
}
