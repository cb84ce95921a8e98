import type { Cmdb } from './index.js';

/**
 * One boot stage of one client as plain data (no plan, no closures), so that it can be written
 * here or handed to the writer thread: which MAC, which machine if known, what to record.
 */
export interface BootStep {
  stage: string;
  mac: string;
  machineId: number | null;
  imageId: string | null;
  /** Register the MAC as a `discovered` machine if nothing owns it yet. */
  discover: boolean;
  /** Which door saw it (dhcp, tftp, http): the actor of the discovery's audit entry. */
  door: string;
  detail: Record<string, unknown>;
  /** When the door saw it (ms since the epoch): the event's time, however late its commit. */
  at: number;
}

/**
 * The side effects of a boot step: register an unknown MAC when asked to, refresh last-seen,
 * and write the event. Call it inside a transaction. (The DHCP server's batches do the same
 * set-wise: see applyWriteBatch.)
 */
export function writeBootStep(cmdb: Cmdb, step: BootStep): void {
  let machineId = step.machineId;
  if (step.discover && machineId === null) machineId = registerDiscovered(cmdb, step.mac, step.door, step.at).id;
  else if (machineId !== null) cmdb.machines.touchLastSeen(machineId, step.at);
  cmdb.events.add({ type: step.stage, mac: step.mac, machineId, imageId: step.imageId, detail: step.detail, at: step.at });
}

/**
 * The machine owning a MAC that a boot step wants registered, stamped as seen at `now`: a new
 * `discovered` machine (audited, with its event) unless another door has just registered it.
 */
export function registerDiscovered(cmdb: Cmdb, mac: string, door: string, now: number): { id: number; created: boolean } {
  const existing = cmdb.machines.idOfMac(mac);
  if (existing !== null) {
    cmdb.machines.touchLastSeen(existing, now);
    return { id: existing, created: false };
  }
  const id = cmdb.machines.addDiscovered(mac, now);
  cmdb.audit.record(`livery:${door}`, 'machine.discover', mac);
  cmdb.events.add({ type: 'machine-discovered', mac, machineId: id, detail: { door }, at: now });
  return { id, created: true };
}
