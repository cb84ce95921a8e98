import type { Facts } from './types.js';

/** One fact that differs between two boots; null: absent on that boot (a disk or NIC added or gone). */
export interface FactChange {
  key: string;
  before: string | number | boolean | null;
  after: string | number | boolean | null;
}

/**
 * The facts that count as the machine's hardware (memory, CPUs, disks, NICs, firmware version),
 * as flat keys. Disks are keyed by serial (by name without one), NICs by MAC, so a disk that
 * comes up under another name is the same disk. A link speed counts only when the link is up.
 */
function hardwareView(f: Facts): Map<string, string | number | boolean> {
  const view = new Map<string, string | number | boolean>();
  const put = (key: string, v: string | number | boolean | null) => v !== null && view.set(key, v);
  put('memory.bytes', f.memory.bytes);
  put('memory.dimms', f.memory.dimms);
  put('cpu.model', f.cpu.model);
  put('cpu.sockets', f.cpu.sockets);
  put('cpu.cores', f.cpu.cores);
  put('cpu.threads', f.cpu.threads);
  put('firmware.version', f.firmware.version);
  for (const d of f.disks) {
    const id = `disk[${d.serial ?? d.name}]`;
    put(`${id}.bytes`, d.bytes);
    put(`${id}.model`, d.model);
  }
  for (const n of f.nics) {
    const id = `nic[${n.mac}]`;
    put(`${id}.present`, true);
    put(`${id}.driver`, n.driver);
    put(`${id}.firmware`, n.firmware);
  }
  return view;
}

/** What changed in the hardware from one boot's facts to the next's, in key order; [] when nothing did. */
export function hardwareDrift(before: Facts, after: Facts): FactChange[] {
  const a = hardwareView(before);
  const b = hardwareView(after);
  const changes: FactChange[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(key) !== b.get(key)) changes.push({ key, before: a.get(key) ?? null, after: b.get(key) ?? null });
  }
  // A renegotiated link (1 Gb/s where it was 10) is drift; a link that is down on one boot is not.
  for (const n of after.nics) {
    const old = before.nics.find((o) => o.mac === n.mac);
    if (old?.speedMbps && n.speedMbps && old.speedMbps !== n.speedMbps) changes.push({ key: `nic[${n.mac}].speedMbps`, before: old.speedMbps, after: n.speedMbps });
  }
  return changes;
}
