/**
 * Free addresses of one subnet's dynamic pools, in memory. Rebuilt from the lease table at
 * start; allocation is amortised O(1) (a stack of free addresses with lazy deletion, plus a
 * min-heap of expiry times to reclaim expired holds), and a full pool answers null at once.
 */
export class AddressPool {
  private readonly free: number[] = [];
  /** Addresses held (offered, bound, declined), with when the hold ends. */
  private readonly held = new Map<number, number>();
  private readonly expiries = new MinHeap();
  readonly size: number;

  /**
   * `share`: when several nodes serve the pool, this node hands out the addresses whose
   * ordinal is `index` modulo `of` first and the others' only once its own are gone, so nodes
   * rarely choose the same address at once.
   */
  constructor(
    private readonly ranges: { start: number; end: number }[],
    share = { index: 0, of: 1 },
  ) {
    const own: number[] = [];
    const others: number[] = [];
    let ordinal = 0;
    for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
      for (let ip = r.start; ip <= r.end; ip++, ordinal++) (ordinal % share.of === share.index ? own : others).push(ip);
    }
    this.size = ordinal;
    // Popped from the end: the lowest address of this node's share goes first, predictable for operators.
    for (const list of [others, own]) for (let i = list.length - 1; i >= 0; i--) this.free.push(list[i]!);
  }

  contains(ip: number): boolean {
    return this.ranges.some((r) => ip >= r.start && ip <= r.end);
  }

  /** Is this pool address free at `now` (never held, or its hold has ended)? */
  isFree(ip: number, now: number): boolean {
    const until = this.held.get(ip);
    return until === undefined || until <= now;
  }

  /** Marks an address held until `until` (a lease, an offer, a quarantine). */
  hold(ip: number, until: number): void {
    if (!this.contains(ip)) return;
    this.held.set(ip, until);
    this.expiries.push(until, ip);
  }

  /** Returns an address to the free list (release, or a lease handed to another address). */
  release(ip: number): void {
    if (!this.contains(ip) || !this.held.delete(ip)) return;
    this.free.push(ip);
  }

  /** A free address, or null when every address is held. */
  allocate(now: number): number | null {
    while (this.free.length > 0) {
      const ip = this.free.pop()!;
      if (this.isFree(ip, now)) return ip;
    }
    // Reclaim holds that have ended; stale heap entries (re-held since) are skipped.
    while (this.expiries.size > 0 && this.expiries.peekKey()! <= now) {
      const { key, value: ip } = this.expiries.pop()!;
      if (this.held.get(ip) === key) {
        this.held.delete(ip);
        return ip;
      }
    }
    return null;
  }

  /** How many addresses are held right now (for metrics). */
  heldCount(now: number): number {
    let n = 0;
    for (const until of this.held.values()) if (until > now) n++;
    return n;
  }
}

/** A binary min-heap of (key, value) pairs. */
class MinHeap {
  private readonly keys: number[] = [];
  private readonly values: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  peekKey(): number | undefined {
    return this.keys[0];
  }

  push(key: number, value: number): void {
    this.keys.push(key);
    this.values.push(value);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.keys[parent]! <= key) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { key: number; value: number } | undefined {
    if (this.keys.length === 0) return undefined;
    const top = { key: this.keys[0]!, value: this.values[0]! };
    const lastKey = this.keys.pop()!;
    const lastValue = this.values.pop()!;
    if (this.keys.length > 0) {
      this.keys[0] = lastKey;
      this.values[0] = lastValue;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.keys.length && this.keys[l]! < this.keys[m]!) m = l;
        if (r < this.keys.length && this.keys[r]! < this.keys[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private swap(a: number, b: number): void {
    [this.keys[a], this.keys[b]] = [this.keys[b]!, this.keys[a]!];
    [this.values[a], this.values[b]] = [this.values[b]!, this.values[a]!];
  }
}
