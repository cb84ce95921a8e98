import type { FastifyRequest } from 'fastify';
import type { Cmdb } from '../cmdb/index.js';
import type { Machine } from '../cmdb/types.js';
import type { Config } from '../config/index.js';
import { parseIpv4 } from '../net/ipv4.js';
import { normalizeMac } from '../net/mac.js';
import { HttpError } from './auth.js';
import { requestIpv4 } from './client-facts.js';

/**
 * The machine a machine-facing request speaks for, by the MAC in its path. Machines hold no
 * tokens: with `http.metadataRequiresOwnAddress` the request must also come from one of that
 * machine's addresses (its reservation or a lease of one of its MACs), so a machine reads and
 * writes only its own records.
 */
export function machineCalling(cmdb: Cmdb, config: Config, req: FastifyRequest, macText: string): { mac: string; machine: Machine } {
  const mac = normalizeMac(macText);
  if (!mac) throw new HttpError(400, `mac: invalid MAC address ${JSON.stringify(macText)}`);
  const machine = cmdb.machines.byCanonicalMac(mac);
  if (!machine || machine.state === 'retired') throw new HttpError(404, `machine ${mac} not found`);
  if (config.http.metadataRequiresOwnAddress) {
    const from = requestIpv4(req);
    if (from === null || !addressesOf(cmdb, machine).includes(from)) throw new HttpError(403, `metadata for ${mac} is served only to that machine's own address`);
  }
  return { mac, machine };
}

function addressesOf(cmdb: Cmdb, machine: Machine): number[] {
  const out: number[] = [];
  if (machine.ip) out.push(parseIpv4(machine.ip)!);
  for (const mac of machine.macs) {
    const lease = cmdb.leases.activeFor(mac);
    if (lease) out.push(parseIpv4(lease.ip)!);
  }
  return out;
}
