import type { FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { Cmdb } from '../cmdb/index.js';
import type { Machine } from '../cmdb/types.js';
import type { Config } from '../config/index.js';
import { RateLimiter } from '../dhcp/ratelimit.js';
import { parseIpv4 } from '../net/ipv4.js';
import { normalizeMac } from '../net/mac.js';
import { HttpError } from './auth.js';
import { requestIpv4 } from './client-facts.js';

/** Why the machine-facing door refused a request, or a boot event it would have written. */
export type MachineDoorRefusal = 'per-address' | 'per-mac' | 'unknown-macs' | 'not-own-address' | 'image-not-served';

/**
 * The checks of the door machines use without a token (boot scripts, artifacts, metadata,
 * phone-home): who may read or write a machine's data, and how many boot events and
 * registrations anyone on the boot network can make livery write. Every refusal is counted in
 * livery_machine_door_refused_total{reason}.
 */
export class MachineDoor {
  private readonly byAddress: RateLimiter;
  private readonly byMac: RateLimiter;
  private readonly refusals: Counter<'reason'>;

  constructor(
    private readonly cmdb: Cmdb,
    private readonly config: Config,
    registry: Registry,
  ) {
    const d = config.http.machineDoor;
    // Every address counts as "known" here: addresses share no global bucket, MACs do.
    this.byAddress = new RateLimiter(d.perAddressPerSecond, Infinity, d.perAddressBurst);
    this.byMac = new RateLimiter(d.perMacPerSecond, d.unknownMacsPerSecond, d.perMacBurst);
    this.refusals = new Counter({
      name: 'livery_machine_door_refused_total',
      help: 'Machine-facing HTTP requests (or the boot events they would write) refused, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
  }

  /**
   * Whether a request from `req` may write a boot event (or register) for `mac`; `known`: the
   * CMDB has a machine with this MAC. Unknown MACs share one bucket, so made-up MACs cannot
   * crowd out the fleet. Counts what it refuses.
   */
  admitEvent(req: FastifyRequest, mac: string, known: boolean, now = Date.now()): MachineDoorRefusal | 'ok' {
    const byAddress = this.byAddress.allow(req.ip, now, true);
    const verdict = byAddress !== 'ok' ? 'per-address' : (({ ok: 'ok', 'per-mac': 'per-mac', global: 'unknown-macs' }) as const)[this.byMac.allow(mac, now, known)];
    if (verdict !== 'ok') this.refusals.inc({ reason: verdict });
    return verdict;
  }

  /** admitEvent for a request that is pointless without its event: refused with 429. */
  requireEvent(req: FastifyRequest, mac: string, known: boolean): void {
    const verdict = this.admitEvent(req, mac, known);
    if (verdict !== 'ok') throw new HttpError(429, `too many boot requests (${verdict} limit of http.machineDoor); ask again in a few seconds`);
  }

  /**
   * The machine a machine-facing request speaks for, by the MAC in its path, once the caller may
   * act for it (requireOwnAddress): machines hold no tokens, so a machine reads and writes only
   * its own records.
   */
  machineCalling(req: FastifyRequest, macText: string, what: string): { mac: string; machine: Machine } {
    const mac = normalizeMac(macText);
    if (!mac) throw new HttpError(400, `mac: invalid MAC address ${JSON.stringify(macText)}`);
    const machine = this.cmdb.machines.byCanonicalMac(mac);
    if (!machine || machine.state === 'retired') throw new HttpError(404, `machine ${mac} not found`);
    this.requireOwnAddress(req, machine, what);
    return { mac, machine };
  }

  /**
   * Refuses (403) a request for `machine` that does not come from one of its addresses (its
   * reservation or an active lease of one of its MACs), unless http.metadataRequiresOwnAddress
   * is off.
   */
  requireOwnAddress(req: FastifyRequest, machine: Machine, what: string): void {
    if (!this.config.http.metadataRequiresOwnAddress) return;
    if (this.fromOwnAddress(req, machine) === true) return;
    this.refusals.inc({ reason: 'not-own-address' });
    throw new HttpError(403, `${what} for ${machine.macs[0]} is answered only from that machine's reserved or leased address (http.metadataRequiresOwnAddress)`);
  }

  /**
   * Whether a boot event for `machine` may be written for this request: from one of its
   * addresses, or when livery knows none of them (another DHCP server leases them) within the
   * rate limits only. Another host asking for a machine's script still gets it, but is not
   * credited to the machine's boot trace. Counts what it refuses.
   */
  mayRecordFor(req: FastifyRequest, machine: Machine): boolean {
    if (!this.config.http.metadataRequiresOwnAddress || this.fromOwnAddress(req, machine) !== false) return true;
    this.refusals.inc({ reason: 'not-own-address' });
    return false;
  }

  /** true/false: the request comes from one of the machine's addresses or not; null: none is known. */
  private fromOwnAddress(req: FastifyRequest, machine: Machine): boolean | null {
    const own = this.addressesOf(machine);
    if (own.length === 0) return null;
    const from = requestIpv4(req);
    return from !== null && own.includes(from);
  }

  /** Refuses (409) a phone-home for an image other than the one in the last plan served to the machine. */
  requireServed(machine: Machine, imageId: string): void {
    const served = this.cmdb.events.lastServedImage(machine.macs);
    if (served === imageId) return;
    this.refusals.inc({ reason: 'image-not-served' });
    const last = served === undefined ? 'no boot plan was served to it' : served === null ? 'its last boot plan booted no image' : `its last boot plan was for image ${served}`;
    throw new HttpError(409, `imageId: ${machine.macs[0]} cannot have booted image ${imageId}: ${last}`);
  }

  private addressesOf(machine: Machine): number[] {
    const out: number[] = [];
    if (machine.ip) out.push(parseIpv4(machine.ip)!);
    for (const mac of machine.macs) {
      const lease = this.cmdb.leases.activeFor(mac);
      if (lease) out.push(parseIpv4(lease.ip)!);
    }
    return out;
  }
}
