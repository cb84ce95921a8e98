import { applyBootWrites, BootWriteCollector, type BootWrites } from './boot-steps.js';
import type { StoredLease } from './leases.js';
import type { BatchOutcome, Cmdb, WriteOp } from './store.js';

type LeaseOp = Extract<WriteOp, { kind: 'lease' | 'lease-state' }>;

/** A batch of WriteOps as one transaction applies it: the boot steps' side effects set-wise, and the lease writes. */
export interface WriteBatch extends BootWrites {
  leases: LeaseOp[];
}

/** Gathers ops into a batch. */
export function packWrites(ops: readonly WriteOp[]): WriteBatch {
  const boot = new BootWriteCollector();
  const leases: LeaseOp[] = [];
  for (const op of ops) {
    if (op.kind === 'boot-step') boot.step(op.step);
    else if (op.kind === 'event') boot.event(op.event);
    else leases.push(op);
  }
  return { ...boot.result(), leases };
}

/** Applies a batch in one transaction: all of it lands, or none of it. */
export function applyWriteBatch(cmdb: Cmdb, batch: WriteBatch): BatchOutcome {
  const now = Date.now();
  return cmdb.tx(() => {
    const discovered = applyBootWrites(cmdb, batch, now);
    const refused: StoredLease[] = [];
    for (const op of batch.leases) {
      if (op.kind === 'lease-state') cmdb.leases.setState(op.ip, op.mac, op.state, op.expiresAt, op.now);
      else if (!cmdb.leases.claim(op.lease, op.now, op.reserved === true)) refused.push(cmdb.leases.stored(op.lease.ip)!);
    }
    return { discovered, changeCount: cmdb.machines.changeCount(), refused };
  });
}
