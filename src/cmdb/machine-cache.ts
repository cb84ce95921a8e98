import type { AssignmentRule } from './assignments.js';
import { discoveredMachine } from './machine-rows.js';
import type { AssignmentStore, BatchOutcome, MachineStore } from './store.js';
import type { Machine } from './types.js';

/** Machines kept at most; past it the cache starts over (a fleet this size is one clear a while). */
const LIMIT = 100_000;
/**
 * How often the change counter is read, at most. Each read is a read transaction (shared-memory
 * locks, and the page cache started over whenever the writer thread has committed since): a
 * read per packet would cost the DHCP server's event loop a noticeable share of its time under
 * load, while an operator's edit only needs to be seen before the next boot asks.
 */
export const CHECK_INTERVAL_MS = 10;

/**
 * The DHCP server's machines by MAC, kept in memory: a lookup with its MAC list and subnet
 * costs a dozen microseconds in SQLite, and every packet needs one. Any change to an existing
 * machine, made by any process, moves the CMDB's change counter (triggers, migration 3), and
 * the cache is dropped when it moves. The counter is read at most every CHECK_INTERVAL_MS, not
 * per packet: an operator's edit is seen within that, long before a machine that was told to
 * reboot sends its DISCOVER. Unknown MACs are not cached (the query that finds nothing is
 * cheap), so registering a new machine drops nothing; assignment rules are kept too, and
 * dropped with the machines (their changes move the same counter); the ones the DHCP server registers
 * itself come in with their commit (remember()).
 * A cached machine's lastSeenAt is as old as the cached copy.
 */
export class MachineCache {
  private readonly byMac = new Map<string, Machine>();
  private version = -1;
  private checkedAt = -Infinity;
  private rulesCached: AssignmentRule[] | null = null;

  constructor(
    private readonly machines: MachineStore,
    private readonly assignments?: AssignmentStore,
  ) {}

  /** The assignment rules, in the order decide() tries them; their changes move the same counter (migration 5). */
  rules(): AssignmentRule[] {
    const now = performance.now();
    if (now - this.checkedAt >= CHECK_INTERVAL_MS) this.check(now);
    return (this.rulesCached ??= this.assignments?.rules() ?? []);
  }

  byCanonicalMac(mac: string): Machine | null {
    const now = performance.now();
    if (now - this.checkedAt >= CHECK_INTERVAL_MS) this.check(now);
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

  private check(now: number): void {
    const version = this.machines.changeCount();
    if (version !== this.version) {
      this.byMac.clear();
      this.rulesCached = null;
      this.version = version;
    }
    this.checkedAt = now;
  }
}
