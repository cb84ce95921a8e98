import type { EventTuple } from './events.js';
import type { BatchOutcome, BootStep, Cmdb } from './store.js';
import type { EventInput } from './types.js';

/**
 * The boot-event side effects of a set of steps (and plain events), in the shape the set-wise
 * statements want: each MAC to register once (with the door that saw it first), each known
 * machine to stamp as seen once, and every event in order. A door that records one step and
 * the DHCP server's batches both go through it (writeBootStep, applyWriteBatch).
 */
export interface BootWrites {
  discover: [mac: string, door: string][];
  seen: number[];
  events: EventTuple[];
}

/** Gathers the side effects of steps and events, in the order they are added. */
export class BootWriteCollector {
  private readonly discover = new Map<string, string>();
  private readonly seen = new Set<number>();
  private readonly events: EventTuple[] = [];

  step(s: BootStep): void {
    const registers = s.discover && s.machineId === null;
    if (registers && !this.discover.has(s.mac)) this.discover.set(s.mac, s.door);
    if (s.machineId !== null) this.seen.add(s.machineId);
    // A step that registers its MAC takes its machine id from the MAC's owner once written.
    this.events.push([s.at, s.stage, s.mac, s.machineId, s.imageId, s.detail, registers]);
  }

  event(e: EventInput & { at: number }): void {
    this.events.push([e.at, e.type, e.mac ?? null, e.machineId ?? null, e.imageId ?? null, e.detail ?? {}, false]);
  }

  result(): BootWrites {
    return { discover: [...this.discover], seen: [...this.seen], events: this.events };
  }
}

/**
 * Applies the side effects inside the caller's transaction: registers the unknown MACs first
 * (so that their events, inserted after, find their machine), stamps the known machines as
 * seen at `now`, then writes the events. Returns the machines it created ([mac, id, at]).
 */
export function applyBootWrites(cmdb: Cmdb, w: BootWrites, now: number): BatchOutcome['discovered'] {
  const discovered: BatchOutcome['discovered'] = [];
  for (const [mac, door] of w.discover) {
    const { id, created } = registerDiscovered(cmdb, mac, door, now);
    if (created) discovered.push([mac, id, now]);
  }
  if (w.seen.length > 0) cmdb.machines.touchMany(w.seen, now);
  if (w.events.length > 0) cmdb.events.addMany(w.events);
  return discovered;
}

/** Writes one boot step's side effects, stamped with the time its door saw it. Call it inside a transaction. */
export function writeBootStep(cmdb: Cmdb, step: BootStep): void {
  const one = new BootWriteCollector();
  one.step(step);
  applyBootWrites(cmdb, one.result(), step.at);
}

/**
 * The machine owning a MAC that a boot step wants registered, stamped as seen at `now`: a new
 * `discovered` machine (audited, with its event) unless another door has just registered it.
 */
function registerDiscovered(cmdb: Cmdb, mac: string, door: string, now: number): { id: number; created: boolean } {
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
