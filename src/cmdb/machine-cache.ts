import { discoveredMachine, type MachineStore } from './machines.js';
import type { BatchOutcome } from './writes.js';
import type { Machine } from './types.js';

/** Machines kept at most; past it the cache starts over (a fleet this size is one clear a while). */
const LIMIT = 100_000;

/**
 * The DHCP server's machines by MAC, kept in memory: a lookup with its MAC list and subnet
 * costs a dozen microseconds in SQLite, and every packet needs one. Any change to an existing
 * machine, made by any process, moves the CMDB's change counter (triggers, migration 3), and
 * the cache is dropped when it moves. The counter is read once per event-loop turn, not per
 * packet: an operator's edit is seen from the next turn, milliseconds later. Unknown MACs are
 * not cached (the query that finds nothing is cheap), so registering a new machine drops
 * nothing; the ones the DHCP server registers itself come in with their commit (remember()).
 * A cached machine's lastSeenAt is as old as the cached copy.
 */
export class MachineCache {
  private readonly byMac = new Map<string, Machine>();
  private version = -1;
  private checked = false;

  constructor(private readonly machines: MachineStore) {}

  byCanonicalMac(mac: string): Machine | null {
    if (!this.checked) this.check();
    const cached = this.byMac.get(mac);
    if (cached) return cached;
    const machine = this.machines.byCanonicalMac(mac);
    if (machine) {
      if (this.byMac.size >= LIMIT) this.byMac.clear();
      this.byMac.set(mac, machine);
    }
    return machine;
  }

  /**
   * Takes in the machines a committed batch registered, which the next packets of those MACs
   * would otherwise read back one query each. Only when the change counter has not moved
   * between that commit and this cache's last check: then nobody can have edited them since
   * (and an edit from now on moves the counter, which the next check sees).
   */
  remember(outcome: BatchOutcome): void {
    if (outcome.changeCount !== this.version) return;
    for (const [mac, id, at] of outcome.discovered) {
      if (this.byMac.size >= LIMIT) this.byMac.clear();
      this.byMac.set(mac, discoveredMachine(id, mac, at));
    }
  }

  private check(): void {
    const version = this.machines.changeCount();
    if (version !== this.version) {
      this.byMac.clear();
      this.version = version;
    }
    this.checked = true;
    setImmediate(() => (this.checked = false));
  }
}
