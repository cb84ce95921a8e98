import type { SqlDb } from './sql.js';
import { checkDistinctEnvNames } from './env-names.js';
import { conflict, invalid } from './errors.js';
import { applyChanges } from './key-values.js';
import { MACHINE_STATES } from './machine-rows.js';
import { refuseRefLikeName } from './refs.js';
import type { SqlSubnetStore } from './subnets.js';
import { poolBounds } from './subnets.js';
import type { Machine, MachineInput, MachineState, SecureBoot } from './types.js';
import {
  checkChannel,
  checkHostname,
  checkImageName,
  checkIp,
  checkKernelArgs,
  checkLabels,
  checkMacs,
  checkObject,
  checkSecureBoot,
  checkText,
  checkUuid,
  checkVars,
  IMAGE_ID,
} from './validate.js';
import { cidrContains, isUsableHost, parseCidr, parseIpv4 } from '../net/ipv4.js';

/** A machine's checked values, ready for its row (see MachineStore.check). */
export interface CheckedMachine {
  macs: string[];
  hostname: string | null;
  uuid: string | null;
  site: string | null;
  labels: string;
  state: MachineState;
  imageName: string | null;
  imageChannel: string | null;
  imageId: string | null;
  kernelArgs: string;
  vars: string;
  ip: string | null;
  subnetId: number | null;
  secureBoot: SecureBoot | null;
}

/**
 * Owners not yet in the database (earlier rows of the same import): each answers how to name
 * the machine that already claims a MAC, hostname (lower case) or address, or null.
 */
export interface PendingOwners {
  mac(mac: string): string | null;
  hostname(hostname: string): string | null;
  ip(ip: string): string | null;
}

const NO_PENDING: PendingOwners = { mac: () => null, hostname: () => null, ip: () => null };

/**
 * The rules a machine record must keep, each field's and those across records (a MAC, hostname
 * or reserved address belongs to one machine; an address fits its subnet, outside the pool).
 */
export class MachineChecker {
  private readonly idOfHostname;
  private readonly imageExists;
  private readonly ownerOfIp;

  constructor(
    db: SqlDb,
    private readonly subnets: SqlSubnetStore,
    private readonly machines: { idOfMac(mac: string): number | null; find(id: number): Machine | null },
  ) {
    // Run once per row of a bulk import: prepared once, not per call.
    this.idOfHostname = db.prepare('SELECT id FROM machines WHERE hostname = ?').pluck();
    this.imageExists = db.prepare('SELECT 1 FROM images WHERE id = ?').pluck();
    this.ownerOfIp = db.prepare('SELECT id, hostname FROM machines WHERE ip = ?');
  }

  /** Checks every field and cross-record rule; returns values ready for the row. */
  check(input: MachineInput, existing: Machine | null, others: PendingOwners = NO_PENDING): CheckedMachine {
    const pick = <K extends keyof MachineInput>(k: K, fallback: MachineInput[K]) => (input[k] !== undefined ? input[k] : fallback);
    const macs = input.macs !== undefined || !existing ? checkMacs('macs', input.macs) : existing.macs;
    for (const mac of macs) {
      const pending = others.mac(mac);
      if (pending) throw conflict('macs', `MAC ${mac} already belongs to machine ${pending}`);
      const owner = this.machines.idOfMac(mac);
      if (owner !== null && owner !== existing?.id) {
        const other = this.machines.find(owner);
        throw conflict('macs', `MAC ${mac} already belongs to machine ${other?.hostname ?? other?.id}`);
      }
    }
    const hostname = checkHostname('hostname', pick('hostname', existing?.hostname));
    // Rows written before this rule keep their hostname until it is changed.
    if (hostname && hostname !== existing?.hostname) refuseRefLikeName('hostname', hostname, ['mac', 'id']);
    if (hostname) {
      const other = this.idOfHostname.get(hostname) as number | undefined;
      if ((other !== undefined && other !== existing?.id) || others.hostname(hostname)) throw conflict('hostname', `hostname ${hostname} is already taken`);
    }
    const state = pick('state', existing?.state) ?? 'registered';
    if (!MACHINE_STATES.includes(state)) throw invalid('state', `must be one of ${MACHINE_STATES.join(', ')}`);
    const imageIn = { ...existing?.image, ...checkObject('image', input.image) };
    const imageId = checkText('image.id', imageIn.id ?? null, 64);
    // An id not (yet) here is kept, with a warning, when it has an image id's form: the image may
    // be on its way from another site, where it has the same id.
    if (imageId && !this.imageExists.get(imageId) && !IMAGE_ID.test(imageId)) {
      throw invalid('image.id', `no image with id ${imageId} here, and it is not an image id (a lowercase UUID v4) that a pull could bring`);
    }
    const imageName = checkImageName('image.name', imageIn.name ?? null);
    const imageChannel = checkChannel('image.channel', imageIn.channel ?? null) ?? (imageName ? 'stable' : null);
    const subnetRef = pick('subnet', existing?.subnet);
    const subnet = subnetRef ? this.subnets.find(subnetRef) : null;
    if (subnetRef && !subnet) throw invalid('subnet', `no subnet ${subnetRef}`);
    const ip = checkIp('ip', pick('ip', existing?.ip));
    if (ip) this.checkReservation(ip, subnet, existing?.id ?? null, others);
    return {
      macs,
      hostname,
      uuid: checkUuid('uuid', pick('uuid', existing?.uuid)),
      site: checkText('site', pick('site', existing?.site), 64),
      labels: JSON.stringify(
        checkDistinctEnvNames('labels', 'LABEL', checkLabels('labels', applyChanges('labelChanges', { field: 'labels', given: input.labels !== undefined }, pick('labels', existing?.labels) ?? {}, input.labelChanges))),
      ),
      state,
      imageName,
      imageChannel,
      imageId,
      kernelArgs: checkKernelArgs('kernelArgs', pick('kernelArgs', existing?.kernelArgs)),
      vars: JSON.stringify(
        checkDistinctEnvNames('vars', 'VAR', checkVars('vars', applyChanges('varChanges', { field: 'vars', given: input.vars !== undefined }, pick('vars', existing?.vars) ?? {}, input.varChanges))),
      ),
      ip,
      subnetId: subnet?.id ?? null,
      secureBoot: checkSecureBoot('secureBoot', pick('secureBoot', existing?.secureBoot)),
    };
  }

  private checkReservation(ip: string, named: { name: string; cidr: string } | null, selfId: number | null, others: PendingOwners): void {
    const addr = parseIpv4(ip)!;
    if (named && !cidrContains(parseCidr(named.cidr)!, addr)) throw invalid('ip', `${ip} is outside its subnet ${named.name} (${named.cidr})`);
    const subnet = this.subnets.containing(addr);
    if (subnet) {
      if (!isUsableHost(parseCidr(subnet.cidr)!, addr)) throw invalid('ip', `${ip} is the network or broadcast address of ${subnet.cidr}`);
      if (subnet.gateway === ip) throw invalid('ip', `${ip} is the gateway of subnet ${subnet.name}`);
      if (poolBounds(subnet).some((p) => addr >= p.start && addr <= p.end)) {
        throw invalid('ip', `${ip} is inside the dynamic pool of subnet ${subnet.name}; reserve an address outside the pool`);
      }
    }
    const other = this.ownerOfIp.get(ip) as { id: number; hostname: string | null } | undefined;
    if (other && other.id !== selfId) throw conflict('ip', `${ip} is already reserved for machine ${other.hostname ?? other.id}`);
    const pending = others.ip(ip);
    if (pending) throw conflict('ip', `${ip} is already reserved for machine ${pending}`);
  }
}
