import type { Cmdb } from './index.js';
import { registerDiscovered, type BootStep } from './boot-steps.js';
import type { EventTuple } from './events.js';
import type { Lease, LeaseState } from './leases.js';
import type { EventInput } from './types.js';

/**
 * A write the DHCP server queues while deciding a packet, as plain data: a batch of them
 * crosses to the writer thread (see packWrites) and is one transaction there. Events carry
 * the time the packet was handled: their commit may come up to a commit window later.
 */
export type WriteOp =
  | { kind: 'boot-step'; step: BootStep }
  | { kind: 'lease'; lease: Lease; now: number }
  | { kind: 'lease-state'; ip: string; mac: string; state: LeaseState; expiresAt: number; now: number }
  | { kind: 'event'; event: EventInput & { at: number } };

type LeaseOp = Extract<WriteOp, { kind: 'lease' | 'lease-state' }>;

/**
 * A batch as it crosses to the writer thread: JSON text, so that one string is copied rather
 * than every object cloned. Its shape is the one the statements want: the events of the whole
 * batch go in as one INSERT (SQLite reads the array itself) and the last-seen stamps as one
 * UPDATE, rather than a statement, and a call from JS, per row.
 */
export interface WriteBatch {
  /** EventTuple[]: every event of the batch, in order. */
  events: string;
  /** number[]: known machines the batch saw, each once. */
  seen: string;
  /** { discover: [mac, door][]; leases: LeaseOp[] }: the writes that stay one statement each. */
  rest: string;
}

/** Packs ops into a batch (on the DHCP server's thread). */
export function packWrites(ops: readonly WriteOp[]): WriteBatch {
  const events: EventTuple[] = [];
  const seen = new Set<number>();
  const discover = new Map<string, string>();
  const leases: LeaseOp[] = [];
  for (const op of ops) {
    switch (op.kind) {
      case 'boot-step': {
        const s = op.step;
        const registers = s.discover && s.machineId === null;
        if (registers && !discover.has(s.mac)) discover.set(s.mac, s.door);
        if (s.machineId !== null) seen.add(s.machineId);
        events.push([s.at, s.stage, s.mac, s.machineId, s.imageId, s.detail, registers]);
        break;
      }
      case 'event': {
        const e = op.event;
        events.push([e.at, e.type, e.mac ?? null, e.machineId ?? null, e.imageId ?? null, e.detail ?? {}, false]);
        break;
      }
      default:
        leases.push(op);
    }
  }
  return { events: JSON.stringify(events), seen: JSON.stringify([...seen]), rest: JSON.stringify({ discover: [...discover], leases }) };
}

/**
 * What a committed batch registered: the machines it created ([mac, id, registered at]: see
 * discoveredMachine) and the CMDB's change counter at the commit (see MachineCache.remember).
 */
export interface BatchOutcome {
  discovered: [string, number, number][];
  changeCount: number;
}

/**
 * Applies a batch in one transaction (on the writer thread): all of it lands, or none of it.
 * New MACs are registered first, so that their events, inserted after, find their machine.
 */
export function applyWriteBatch(cmdb: Cmdb, batch: WriteBatch): BatchOutcome {
  const { discover, leases } = JSON.parse(batch.rest) as { discover: [string, string][]; leases: LeaseOp[] };
  const now = Date.now();
  return cmdb.tx(() => {
    const discovered: BatchOutcome['discovered'] = [];
    for (const [mac, door] of discover) {
      const { id, created } = registerDiscovered(cmdb, mac, door, now);
      if (created) discovered.push([mac, id, now]);
    }
    cmdb.machines.touchMany(batch.seen, now);
    for (const op of leases) {
      if (op.kind === 'lease') cmdb.leases.put(op.lease, op.now);
      else cmdb.leases.setState(op.ip, op.mac, op.state, op.expiresAt, op.now);
    }
    cmdb.events.addMany(batch.events);
    return { discovered, changeCount: cmdb.machines.changeCount() };
  });
}
