import type { Cmdb } from './index.js';
import { writeBootStep, type BootStep, type StepMemo } from './boot-steps.js';
import type { Lease, LeaseState } from './leases.js';
import type { EventInput } from './types.js';

/**
 * A write the DHCP server queues while deciding a packet, as plain data: it crosses to the
 * writer thread as JSON text, and one batch of them is one transaction.
 */
export type WriteOp =
  | { kind: 'boot-step'; step: BootStep }
  | { kind: 'lease'; lease: Lease; now: number }
  | { kind: 'lease-state'; ip: string; mac: string; state: LeaseState; expiresAt: number; now: number }
  | { kind: 'event'; event: EventInput };

/** Applies a batch in one transaction: all of it lands, or none of it. */
export function applyWrites(cmdb: Cmdb, ops: readonly WriteOp[]): void {
  const memo: StepMemo = { touched: new Set(), registered: new Map() };
  cmdb.tx(() => {
    for (const op of ops) {
      switch (op.kind) {
        case 'boot-step':
          writeBootStep(cmdb, op.step, memo);
          break;
        case 'lease':
          cmdb.leases.put(op.lease, op.now);
          break;
        case 'lease-state':
          cmdb.leases.setState(op.ip, op.mac, op.state, op.expiresAt, op.now);
          break;
        case 'event':
          cmdb.events.add(op.event);
          break;
      }
    }
  });
}
