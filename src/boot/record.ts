import type { BootStep, Cmdb } from '../cmdb/index.js';
import type { TransferRecord } from '../tftp/index.js';
import type { BootPlan } from './plan.js';

/** What a door records for a stage of a plan: the data every door writes alike. */
export function bootStep(plan: BootPlan, stage: string, detail: Record<string, unknown> = {}): BootStep {
  return {
    stage,
    mac: plan.facts.mac,
    machineId: plan.machine?.id ?? null,
    imageId: plan.image?.id ?? null,
    discover: plan.discover,
    door: plan.facts.door,
    detail: { firmware: plan.facts.firmware, arch: plan.facts.arch, action: plan.action, ...detail },
    at: Date.now(),
  };
}

/**
 * A TFTP transfer is a boot stage of whichever machine holds the client's address: TFTP
 * carries no MAC, so the lease says whose it was. Its time is when it began, not when it was
 * written: a transfer whose last ACK went missing ends seconds after the loader it delivered
 * has moved on to DHCP and its script, and a trace reads events in time order. It began after
 * a virtual file's decision (its boot-config event), so it comes after that decision too.
 */
export function recordTransfer(cmdb: Cmdb, r: TransferRecord): Promise<void> {
  const lease = cmdb.leases.get(r.client.address.replace(/^::ffff:/, ''));
  return cmdb.soon(() => {
    cmdb.events.add({
      type: 'tftp',
      at: r.sendingSince,
      mac: lease?.mac ?? null,
      machineId: lease ? cmdb.machines.idOfMac(lease.mac) : null,
      detail: { file: r.file, bytes: r.bytes, durationMs: Math.round(r.durationMs), result: r.result, blksize: r.blksize, windowsize: r.windowsize, client: r.client.address },
    });
  });
}
