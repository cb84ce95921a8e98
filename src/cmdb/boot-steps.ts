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
}

/** What the steps of one transaction already did, so that the next step of a MAC does not redo it. */
export interface StepMemo {
  /** Machines whose last-seen stamp this transaction has set. */
  touched: Set<number>;
  /** Machines registered (or found) for MACs the plan did not know. */
  registered: Map<string, number>;
}

/**
 * The side effects of a boot step: register an unknown MAC when asked to, refresh last-seen,
 * and write the event. Call it inside a transaction; with a memo, a machine is registered and
 * stamped once per transaction however many of its steps it holds (DISCOVER and OFFER, say).
 */
export function writeBootStep(cmdb: Cmdb, step: BootStep, memo: StepMemo = { touched: new Set(), registered: new Map() }): void {
  let machineId = step.machineId;
  if (step.discover && machineId === null) {
    machineId = memo.registered.get(step.mac) ?? registerDiscovered(cmdb, step.mac, step.door, memo);
    memo.registered.set(step.mac, machineId);
  }
  if (machineId !== null && !memo.touched.has(machineId)) {
    cmdb.machines.touchLastSeen(machineId);
    memo.touched.add(machineId);
  }
  cmdb.events.add({ type: step.stage, mac: step.mac, machineId, imageId: step.imageId, detail: step.detail });
}

/** Creates a `discovered` machine for a new MAC, unless another door has just done it. */
function registerDiscovered(cmdb: Cmdb, mac: string, door: string, memo: StepMemo): number {
  const existing = cmdb.machines.idOfMac(mac);
  if (existing !== null) return existing;
  const id = cmdb.machines.addDiscovered(mac);
  memo.touched.add(id); // registered as seen now
  cmdb.audit.record(`livery:${door}`, 'machine.discover', mac);
  cmdb.events.add({ type: 'machine-discovered', mac, machineId: id, detail: { door } });
  return id;
}
