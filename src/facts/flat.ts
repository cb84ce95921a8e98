import type { Facts, FlatFacts } from './types.js';

const GIB = 1024 ** 3;
/** Sizes in GiB with one decimal: `memory_gb>=256` reads as the operator means it. */
const gib = (bytes: number) => Math.round((bytes / GIB) * 10) / 10;

/**
 * Facts as flat keys: what `machine list --fact/--columns` and selectors (`facts.cpu.vendor=AMD`)
 * see, and what the machine record keeps of its latest boot. Unknown values are left out.
 */
export function flattenFacts(f: Facts): FlatFacts {
  const out: Record<string, string | number | null> = {
    'system.vendor': f.system.vendor,
    'system.product': f.system.product,
    'system.serial': f.system.serial,
    'system.uuid': f.system.uuid,
    'firmware.vendor': f.firmware.vendor,
    'firmware.version': f.firmware.version,
    'firmware.date': f.firmware.date,
    'cpu.vendor': f.cpu.vendor,
    'cpu.model': f.cpu.model,
    'cpu.sockets': f.cpu.sockets,
    'cpu.cores': f.cpu.cores,
    'cpu.threads': f.cpu.threads,
    memory_gb: gib(f.memory.bytes),
    'memory.bytes': f.memory.bytes,
    'memory.dimms': f.memory.dimms,
    'disks.count': f.disks.length,
    disks_gb: gib(f.disks.reduce((sum, d) => sum + d.bytes, 0)),
    'nics.count': f.nics.length,
    'bmc.address': f.bmc?.address ?? null,
    'bmc.mac': f.bmc?.mac ?? null,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null)) as FlatFacts;
}
