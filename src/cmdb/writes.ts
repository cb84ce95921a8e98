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
    const claims = setWise(batch.leases);
    if (claims) {
      const taken = cmdb.leases.claimMany(claims.map(({ lease, now, reserved }) => ({ lease, now, force: reserved === true })));
      for (const ip of taken) refused.push(cmdb.leases.stored(ip)!);
    } else {
      for (const op of batch.leases) {
        if (op.kind === 'lease-state') cmdb.leases.setState(op.ip, op.mac, op.state, op.expiresAt, op.now);
        else if (!cmdb.leases.claim(op.lease, op.now, op.reserved === true)) refused.push(cmdb.leases.stored(op.lease.ip)!);
      }
    }
    return { discovered, changeCount: cmdb.machines.changeCount(), refused };
  });
}

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
