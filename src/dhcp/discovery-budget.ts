/**
 * How many machine records unknown MACs may create per subnet per interval
 * (discovery.maxPerSubnet per discovery.intervalSeconds, fixed windows). A MAC admitted in the
 * current window stays admitted for its other packets (its record may not be committed yet).
 * Memory is bounded: at most maxPerSubnet MACs per subnet are remembered.
 */
export class DiscoveryBudget {
  private readonly windows = new Map<number, { endsAt: number; admitted: Set<string> }>();

  constructor(private readonly limits: { maxPerSubnet: number; intervalSeconds: number }) {}

  /** Whether `mac` may be registered in this subnet now. */
  allow(subnetId: number, mac: string, now: number): boolean {
    let w = this.windows.get(subnetId);
    if (!w || w.endsAt <= now) this.windows.set(subnetId, (w = { endsAt: now + this.limits.intervalSeconds * 1000, admitted: new Set() }));
    if (w.admitted.has(mac)) return true;
    if (w.admitted.size >= this.limits.maxPerSubnet) return false;
    w.admitted.add(mac);
    return true;
  }
}
