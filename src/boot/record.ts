import type { Cmdb } from '../cmdb/index.js';
import { CmdbError } from '../cmdb/errors.js';
import type { BootPlan } from './plan.js';

/**
 * The side effects of a boot step, shared by every door: register an unknown MAC when the
 * plan says so, refresh last-seen, and write the boot event for this stage.
 */
export function recordBootStep(cmdb: Cmdb, plan: BootPlan, stage: string, detail: Record<string, unknown> = {}): void {
  const write = () => {
    let machineId = plan.machine?.id ?? null;
    if (plan.discover && !plan.machine) machineId = registerDiscovered(cmdb, plan.facts.mac, plan.facts.door);
    if (machineId !== null) cmdb.machines.touchLastSeen(machineId);
    cmdb.events.add({
      type: stage,
      mac: plan.facts.mac,
      machineId,
      imageId: plan.image?.id ?? null,
      detail: { firmware: plan.facts.firmware, arch: plan.facts.arch, action: plan.action, ...detail },
    });
  };
  // Inside a caller's transaction (the DHCP server's group commit) the step simply joins it:
  // a savepoint per step is two more statements, and a failure aborts the whole batch anyway.
  if (cmdb.db.inTransaction) write();
  else cmdb.tx(write);
}

/** Creates a `discovered` machine for a new MAC (another door may have just done it). */
export function registerDiscovered(cmdb: Cmdb, mac: string, door: string): number {
  const existing = cmdb.machines.idOfMac(mac);
  if (existing !== null) return existing;
  try {
    const id = cmdb.machines.add({ macs: [mac], state: 'discovered' });
    cmdb.audit.record(`livery:${door}`, 'machine.discover', mac);
    cmdb.events.add({ type: 'machine-discovered', mac, machineId: id, detail: { door } });
    return id;
  } catch (err) {
    if (err instanceof CmdbError && err.kind === 'conflict') return cmdb.machines.idOfMac(mac)!;
    throw err;
  }
}
