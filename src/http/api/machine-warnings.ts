import type { Cmdb } from '../../cmdb/index.js';
import type { Machine } from '../../cmdb/types.js';
import { parseIpv4 } from '../../net/ipv4.js';

/**
 * Likely mistakes in a machine record that are still valid to store: an image name or id the
 * catalog has never seen (a typo boots nothing), an address in no subnet livery serves (no lease, no
 * reservation). Stored anyway, since the image or subnet may come later; said at once.
 */
export function machineWarnings(cmdb: Cmdb, m: Machine): string[] {
  const warnings: string[] = [];
  const name = m.image.id ? null : m.image.name;
  if (name && cmdb.images.list({ name }).length === 0) {
    warnings.push(`image: no image named ${name} in the catalog yet; the machine boots nothing until one is published (livery image list shows the names)`);
  }
  if (m.image.id && !cmdb.images.find(m.image.id)) {
    warnings.push(`image: no image with id ${m.image.id} in the catalog yet; the machine boots nothing until it is pulled (livery image pull keeps an image's id) or published here`);
  }
  const ip = m.ip === null ? null : parseIpv4(m.ip);
  if (ip !== null && cmdb.subnets.containing(ip) === null) {
    warnings.push(`ip: ${m.ip} is in no subnet livery serves; it is reserved for nothing until a subnet contains it`);
  }
  return warnings;
}

/** The machine as the API answers it, with `warnings` when there are any. */
export function withWarnings(cmdb: Cmdb, m: Machine): Machine & { warnings?: string[] } {
  const warnings = machineWarnings(cmdb, m);
  return warnings.length > 0 ? { ...m, warnings } : m;
}
