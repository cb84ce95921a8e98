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
  const created = registerBootMachines(cmdb, w, now);
  addBootEvents(cmdb, w, created, now);
  return created;
}

/**
 * applyBootWrites() up to its events: the registrations and last-seen stamps. A caller with
 * more to write puts it between this and addBootEvents(), which must come last (see orderIds).
 */
export function registerBootMachines(cmdb: Cmdb, w: BootWrites, now: number): BatchOutcome['discovered'] {
  const { created, owned } = registerDiscovered(cmdb, w.discover, now);
  // One statement, ids in order: two writers side by side then lock the rows they share in one order.
  const seen = [...new Set([...w.seen, ...owned])].sort((a, b) => a - b);
  if (seen.length > 0) cmdb.machines.touchMany(seen, now);
  return created.map(({ mac, id }) => [mac, id, now]);
}

/** The events of `w`, after a discovery event per machine registerBootMachines() created. */
export function addBootEvents(cmdb: Cmdb, w: BootWrites, created: BatchOutcome['discovered'], now: number): void {
  const door = new Map(w.discover);
  const events: EventTuple[] = created.map(([mac, id]) => [now, 'machine-discovered', mac, id, null, { door: door.get(mac) }, false]);
  if (w.events.length + events.length > 0) cmdb.events.addMany(events.length > 0 ? [...events, ...w.events] : w.events);
}

/** Writes one boot step's side effects, stamped with the time its door saw it. Call it inside a transaction. */
export function writeBootStep(cmdb: Cmdb, step: BootStep): void {
  const one = new BootWriteCollector();
  one.step(step);
  applyBootWrites(cmdb, one.result(), step.at);
}

/**
 * Registers the MACs boot steps want registered, as `discovered` machines seen at `now` (each
 * audited; their events are the caller's), set-wise. A MAC another door has registered (before,
 * or by a writer beside this one) is not registered again: its owner is returned among `owned`,
 * to stamp as seen. Returns the machines it created, in `discover`'s order.
 */
function registerDiscovered(cmdb: Cmdb, discover: BootWrites['discover'], now: number): { created: { mac: string; id: number; door: string }[]; owned: number[] } {
  if (discover.length === 0) return { created: [], owned: [] };
  const owners = cmdb.machines.ownersOf(discover.map(([mac]) => mac));
  const fresh = discover.filter(([mac]) => !owners.has(mac));
  const ids = cmdb.machines.addDiscoveredMany(fresh.map(([mac]) => mac), now);
  const created = fresh.flatMap(([mac, door], i) => (ids[i] === null ? [] : [{ mac, id: ids[i]!, door }]));
  const lost = fresh.filter((_, i) => ids[i] === null).map(([mac]) => mac);
  const owned = [...owners.values(), ...cmdb.machines.ownersOf(lost).values()];
  cmdb.audit.recordMany(created.map(({ mac, door }) => [`livery:${door}`, 'machine.discover', mac]));
  return { created, owned };
}
