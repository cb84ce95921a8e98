import { addBootEvents, BootWriteCollector, registerBootMachines, type BootWrites } from './boot-steps.js';
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

/**
 * Applies a batch in one transaction: all of it lands, or none of it. The write lock is taken
 * shared: every statement here is atomic per row (claims guarded in their WHERE, registrations
 * ON CONFLICT), so other nodes' batches may commit beside it. The events go last, as the ids
 * they take must commit in order (SqlDb.orderIds).
 */
export function applyWriteBatch(cmdb: Cmdb, batch: WriteBatch): BatchOutcome {
  const now = Date.now();
  return cmdb.tx(() => {
    const discovered = registerBootMachines(cmdb, batch, now);
    const refused: StoredLease[] = [];
    const claims = setWise(batch.leases);
    if (claims) {
      const taken = cmdb.leases.claimMany(claims.map(({ lease, now, reserved }) => ({ lease, now, force: reserved === true })));
      for (const ip of taken) refused.push(holder(cmdb, ip));
    } else {
      for (const op of batch.leases) {
        if (op.kind === 'lease-state') cmdb.leases.setState(op.ip, op.mac, op.state, op.expiresAt, op.now);
        else if (!cmdb.leases.claim(op.lease, op.now, op.reserved === true)) refused.push(holder(cmdb, op.lease.ip));
      }
    }
    addBootEvents(cmdb, batch, discovered, now);
    return { discovered, changeCount: cmdb.machines.changeCount(), refused };
  }, 'shared');
}

/**
 * The row that made a claim fail. A writer beside this one may have dropped it since (its MAC
 * moved): the address is free after all, and the batch is run again (writer-thread.ts).
 */
function holder(cmdb: Cmdb, ip: string): StoredLease {
  const row = cmdb.leases.stored(ip);
  if (row) return row;
  throw Object.assign(new Error(`the lease refused at ${ip} was released meanwhile`), { code: RACED });
}

/** The code of holder()'s error: the batch is worth running again. */
export const RACED = 'LIVERY_RACED';

/**
 * The batch's lease claims, when one claimMany() does what claiming them in order does: only
 * claims, no address twice and no MAC twice within a subnet (the DHCP server's batches, but for
 * a client that went through two exchanges in one). Else null: they are written one by one.
 * On PostgreSQL each statement is a round trip: a batch then costs two, not two per lease.
 */
function setWise(ops: readonly LeaseOp[]): Extract<LeaseOp, { kind: 'lease' }>[] | null {
  const ips = new Set<string>();
  const macs = new Set<string>();
  const puts: Extract<LeaseOp, { kind: 'lease' }>[] = [];
  for (const op of ops) {
    if (op.kind !== 'lease') return null;
    const mac = `${op.lease.mac} ${op.lease.subnetId}`;
    if (ips.has(op.lease.ip) || macs.has(mac)) return null;
    ips.add(op.lease.ip);
    macs.add(mac);
    puts.push(op);
  }
  return puts;
}
