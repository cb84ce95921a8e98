import type { SubnetBook } from './lease-book.js';

/** Why an unknown MAC may not take one more address. */
export type UnknownMacRefusal = 'unknown-mac-cap' | 'unknown-mac-share';

/** How often, at most, a subnet's ended holds are swept out while it is at its limit. */
const SWEEP_INTERVAL_MS = 1000;

/**
 * What MACs no operator registered hold, per subnet: offers, leases and quarantines alike
 * (each takes a pool address out of service), each with when it ends. Bounded two ways:
 * dhcp.unknownMacLeaseCap across all subnets, and dhcp.unknownMacPoolPercent of each subnet's
 * pool, so that whatever unknown MACs send, registered machines always find a free address.
 * Rebuilt from the lease books at start (see seed): the CMDB holds the truth.
 */
export class UnknownMacBudget {
  private readonly bySubnet = new Map<number, Map<string, number>>();
  private sweptAt = -Infinity;
  private total = 0;

  constructor(private readonly limits: { cap: number; poolPercent: number }) {}

  /** How many addresses unknown MACs hold now (for the gauge); ended holds may count until swept. */
  get size(): number {
    return this.total;
  }

  /** Whether `mac` (unknown) may hold an address of this subnet now: null if so, else why not. */
  refusal(book: SubnetBook, mac: string, now: number): UnknownMacRefusal | null {
    const held = this.holds(book.subnet.id);
    const until = held.get(mac);
    if (until !== undefined && until > now) return null;
    const share = Math.floor((book.pool.size * this.limits.poolPercent) / 100);
    const over = (): UnknownMacRefusal | null => {
      const own = held.has(mac) ? 1 : 0;
      if (this.total - own >= this.limits.cap) return 'unknown-mac-cap';
      // At 100 % the pool's own exhaustion is the only bound (counted as such).
      return share < book.pool.size && held.size - own >= share ? 'unknown-mac-share' : null;
    };
    if (over() === null) return null;
    this.sweep(now);
    return over();
  }

  /** Records (or extends) what `mac` holds in this subnet, until `until`. */
  hold(book: SubnetBook, mac: string, until: number): void {
    const held = this.holds(book.subnet.id);
    if (!held.has(mac)) this.total++;
    held.set(mac, until);
  }

  /** `mac` gave its address back. */
  release(book: SubnetBook, mac: string): void {
    if (this.holds(book.subnet.id).delete(mac)) this.total--;
  }

  /** Counts what unknown MACs hold in the books (at start, and after the books are reloaded). */
  seed(books: Iterable<SubnetBook>, isUnknown: (mac: string) => boolean, now: number): void {
    this.bySubnet.clear();
    this.total = 0;
    for (const book of books) {
      for (const h of book.byIp.values()) {
        if (h.state !== 'released' && h.expiresAt > now && book.pool.contains(h.ip) && isUnknown(h.mac)) this.hold(book, h.mac, h.expiresAt);
      }
    }
  }

  /** Forgets ended holds, at most once a second: at the limit every packet asks. */
  private sweep(now: number): void {
    if (now - this.sweptAt < SWEEP_INTERVAL_MS) return;
    this.sweptAt = now;
    for (const held of this.bySubnet.values()) {
      for (const [mac, until] of held) {
        if (until <= now) {
          held.delete(mac);
          this.total--;
        }
      }
    }
  }

  private holds(subnetId: number): Map<string, number> {
    let held = this.bySubnet.get(subnetId);
    if (!held) this.bySubnet.set(subnetId, (held = new Map()));
    return held;
  }
}
