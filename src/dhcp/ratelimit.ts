/**
 * Token buckets: one per MAC, and one shared by all MACs the CMDB does not know. A single
 * flooding client cannot starve the rest, and a flood of made-up MACs cannot starve the
 * server nor crowd out the machines it knows (those are bounded by their per-MAC buckets).
 */
export class RateLimiter {
  private readonly perMac = new Map<string, { tokens: number; at: number }>();
  private global: { tokens: number; at: number };
  private lastSweep = 0;

  constructor(
    private readonly perMacPerSecond: number,
    private readonly globalPerSecond: number,
    /** Tokens a key's bucket holds; DHCP's default is two seconds' worth, at least 4. */
    private readonly burst = Math.max(perMacPerSecond * 2, 4),
  ) {
    this.global = { tokens: globalPerSecond, at: 0 };
  }

  /** 'ok', or which limit refused the packet. */
  allow(mac: string, now: number, known: boolean): 'ok' | 'per-mac' | 'global' {
    const burst = this.burst;
    const kept = this.perMac.get(mac);
    const b = kept ?? { tokens: burst, at: now };
    refill(b, now, this.perMacPerSecond, burst);
    // Only a kept bucket can be empty: a new one starts with a burst of at least 4.
    if (b.tokens < 1) return 'per-mac';
    if (!known) {
      refill(this.global, now, this.globalPerSecond, this.globalPerSecond);
      if (this.global.tokens < 1) return 'global';
      this.global.tokens -= 1;
    }
    b.tokens -= 1;
    // A MAC refused by the global limit gets no bucket, so a flood of made-up MACs costs no memory.
    if (kept === undefined) this.perMac.set(mac, b);
    this.sweep(now, burst);
    return 'ok';
  }

  /** Forgets full buckets now and then, so memory stays bounded under a many-MAC flood. */
  private sweep(now: number, burst: number): void {
    if (now - this.lastSweep < 10_000) return;
    this.lastSweep = now;
    for (const [mac, b] of this.perMac) {
      refill(b, now, this.perMacPerSecond, burst);
      if (b.tokens >= burst) this.perMac.delete(mac);
    }
  }
}

function refill(b: { tokens: number; at: number }, now: number, rate: number, burst: number): void {
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
  b.at = now;
}
