/** A machine's hardware as livery records it per boot (parsed from livery-facts' report). */

export interface DiskFacts {
  /** The kernel's name for it (sda, nvme0n1, vda): stable enough to tell disks apart without a serial. */
  name: string;
  model: string | null;
  serial: string | null;
  bytes: number;
  rotational: boolean | null;
}

export interface NicFacts {
  name: string;
  mac: string;
  driver: string | null;
  /** Negotiated link speed; null while the link is down or the driver does not say. */
  speedMbps: number | null;
  firmware: string | null;
}

export interface Facts {
  system: { vendor: string | null; product: string | null; serial: string | null; uuid: string | null };
  firmware: { vendor: string | null; version: string | null; date: string | null };
  cpu: { vendor: string | null; model: string | null; sockets: number; cores: number; threads: number };
  /** Installed memory: the DIMMs' sizes when dmidecode lists them, else what the kernel sees (MemTotal). */
  memory: { bytes: number; dimms: number | null; source: 'dimms' | 'meminfo' };
  disks: DiskFacts[];
  nics: NicFacts[];
  /** The BMC as `ipmitool lan print` reports it over the in-band interface; null: no IPMI device. */
  bmc: { address: string | null; mac: string | null } | null;
}

/** Facts as flat `key: value` pairs: what the machine list filters and shows, and selectors match (`facts.<key>`). */
export type FlatFacts = Record<string, string | number>;

/** livery-facts' output: raw text sections, each parsed on the server (src/facts/parse.ts). */
export interface FactsReport {
  format: 1;
  cpuinfo: string;
  meminfo: string;
  sysfs: string;
  dmidecode?: string;
  'ipmi-lan'?: string;
}
