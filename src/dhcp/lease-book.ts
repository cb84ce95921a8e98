import type { Subnet, WriteOp } from '../cmdb/index.js';
import type { LeaseState, StoredLease } from '../cmdb/leases.js';
import { cidrContains, formatIpv4, parseCidr, parseIpv4, parseIpv4Range, type Cidr } from '../net/ipv4.js';
import type { DhcpBootPath } from './contract.js';
import { AddressPool } from './pool.js';

export interface Holding {
  ip: number;
  mac: string;
  state: LeaseState;
  expiresAt: number;
  /** The client identifier (option 61, hex) the lease was bound with, if any: a RELEASE must carry it. */
  clientId: string | null;
  /** When it was decided (ms): a row another node wrote earlier does not undo it. */
  since: number;
}

/** One subnet's addresses as the DHCP server sees them: its pool and who holds what. */
export interface SubnetBook {
  subnet: Subnet;
  cidr: Cidr;
  pool: AddressPool;
  byMac: Map<string, Holding>;
  byIp: Map<number, Holding>;
}

/**
 * How far back each look at the lease table reaches past the newest row seen: nodes stamp rows
 * with their own clocks, which NTP keeps within far less of each other.
 */
const CLOCK_SLACK_MS = 2000;

/**
 * Address decisions for every subnet: reservation first, then the MAC's previous address,
 * then the pool. State lives in the CMDB; these maps are a cache rebuilt from it at start and
 * whenever a subnet changes, so a restart (even after kill -9) sees every committed lease.
 * When other nodes serve the segment too, the cache also follows the rows they write, and
 * each node takes from its own share of every pool first; a claim the database refuses (see
 * SqlLeaseStore.claim) is what settles an address two nodes chose at once.
 */
export class LeaseBooks {
  private books = new Map<number, SubnetBook>();
  private version = '';
  private checkedAt = 0;
  /** Set by reload() until a refresh has read the lease table back (the database may be down meanwhile). */
  private stale = false;
  private onReloaded: () => void = () => {};
  /** The newest row written by any node that these books have taken in. */
  private followedTo = Date.now();

  constructor(
    private readonly source: Pick<DhcpBootPath, 'subnets' | 'leasesIn' | 'leasesChangedSince' | 'leaseOf'>,
    private readonly opts: {
      offerHoldSeconds: number;
      declineQuarantineSeconds: number;
      /** This node's share of each pool: the addresses whose ordinal is `index` modulo `of`. */
      share: { index: number; of: number };
    },
  ) {
    this.refresh(true);
  }

  /** Picks up subnet edits made through the API and other nodes' leases (checked at most once a second). */
  refresh(force = false): void {
    const now = Date.now();
    force ||= this.stale;
    if (!force && now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    if (this.opts.share.of > 1) this.follow(now);
    const subnets = this.source.subnets();
    const version = subnets.map((s) => `${s.id}@${s.updatedAt}`).join(',');
    if (!force && version === this.version) return;
    this.version = version;
    const next = new Map<number, SubnetBook>();
    for (const subnet of subnets) {
      const old = this.books.get(subnet.id);
      next.set(subnet.id, old && old.subnet.updatedAt === subnet.updatedAt ? old : this.load(subnet));
    }
    this.books = next;
    if (this.stale) {
      this.onReloaded();
      this.stale = false;
    }
  }

  /**
   * Rebuilds the books from the lease table (after a failed commit, memory may be ahead of
   * disk). When that read fails (the database is down) it throws, and every refresh from then
   * on tries again until one has read the books back.
   */
  reload(): void {
    this.books.clear();
    this.version = '';
    this.stale = true;
    this.refresh(true);
  }

  /** Calls `fn` after each reload has read the books back: what was counted from them is counted again. */
  whenReloaded(fn: () => void): void {
    this.onReloaded = fn;
  }

  /**
   * Takes in a lease row from the CMDB (another node's): what the database holds wins over an
   * offer, and over anything decided before the row; `refusedClaim`: the row that refused this
   * node's claim on its address, which wins over that claim however recent.
   */
  learn(row: StoredLease, now: number, refusedClaim = false): void {
    const book = this.books.get(row.subnetId);
    if (!book) return;
    const ip = parseIpv4(row.ip)!;
    const current = book.byIp.get(ip);
    const live = row.state !== 'released' && row.expiresAt > now;
    if (!live && current?.mac !== row.mac) return;
    if (current && !refusedClaim && current.state !== 'offered' && current.since > row.updatedAt) return;
    if (current && current.mac !== row.mac) this.evict(book, current);
    this.setHolding(book, { ip, mac: row.mac, state: row.state, expiresAt: row.expiresAt, clientId: row.clientId, since: row.updatedAt });
    if (!live) book.pool.release(ip);
  }

  all(): Iterable<SubnetBook> {
    return this.books.values();
  }

  containing(ip: number): SubnetBook | null {
    for (const b of this.books.values()) if (cidrContains(b.cidr, ip)) return b;
    return null;
  }

  /**
   * The address to offer this MAC, held in memory for the offer's lifetime; null when the
   * pool is exhausted (or the unknown-MAC cap is reached).
   */
  offer(book: SubnetBook, mac: string, reserved: string | null, requested: number | null, now: number, mayUsePool: boolean): number | null {
    const fixed = reserved ? parseIpv4(reserved) : null;
    if (fixed !== null && cidrContains(book.cidr, fixed)) return this.holdOffer(book, mac, fixed, now);
    if (this.opts.share.of > 1) this.lookUp(book, mac, now);
    const current = book.byMac.get(mac);
    // A hold that has ended is given again only to a client that may take from the pool.
    const mayRenew = current && current.state !== 'declined' && (mayUsePool || current.expiresAt > now);
    if (mayRenew && this.availableTo(book, current.ip, mac, now)) return this.holdOffer(book, mac, current.ip, now);
    if (!mayUsePool) return null;
    if (requested !== null && book.pool.contains(requested) && this.availableTo(book, requested, mac, now)) return this.holdOffer(book, mac, requested, now);
    const ip = book.pool.allocate(now);
    return ip === null ? null : this.holdOffer(book, mac, ip, now);
  }

  /** Whether `mac` may have `ip` now: its reservation, its own holding, or a free pool address. */
  availableTo(book: SubnetBook, ip: number, mac: string, now: number): boolean {
    const h = book.byIp.get(ip);
    if (h && h.mac !== mac && h.expiresAt > now) return false;
    return h?.mac === mac || book.pool.isFree(ip, now) || !book.pool.contains(ip);
  }

  /** Who holds `ip` right now (unexpired), if anyone. */
  holder(book: SubnetBook, ip: number, now: number): Holding | null {
    const h = book.byIp.get(ip);
    return h && h.expiresAt > now ? h : null;
  }

  holdingOf(book: SubnetBook, mac: string): Holding | null {
    return book.byMac.get(mac) ?? null;
  }

  /** Binds `ip` to `mac` for the subnet's lease time; returns the claim to commit (`reserved`: the machine's own address). */
  bind(book: SubnetBook, mac: string, ip: number, now: number, extra: { clientId: string | null; hostname: string | null; reserved: boolean }): WriteOp {
    const expiresAt = now + book.subnet.leaseSeconds * 1000;
    const { clientId, hostname, reserved } = extra;
    this.setHolding(book, { ip, mac, state: 'bound', expiresAt, clientId, since: now });
    return { kind: 'lease', lease: { ip: formatIpv4(ip), mac, subnetId: book.subnet.id, state: 'bound', expiresAt, clientId, hostname }, now, reserved };
  }

  /** The holder gave the address back (same MAC, same client identifier): free it, but remember it was this MAC's. */
  release(book: SubnetBook, mac: string, clientId: string | null, ip: number, now: number): WriteOp | null {
    const h = book.byIp.get(ip);
    if (!h || h.mac !== mac || h.state !== 'bound' || h.expiresAt <= now) return null;
    if (h.clientId !== null && h.clientId !== clientId) return null;
    this.setHolding(book, { ip, mac, state: 'released', expiresAt: now, clientId: h.clientId, since: now });
    book.pool.release(ip);
    return { kind: 'lease-state', ip: formatIpv4(ip), mac, state: 'released', expiresAt: now, now };
  }

  /**
   * The client found the address in use: keep it out of the pool for the quarantine time. Only
   * an address this server offered or leased to that MAC, and still does.
   */
  decline(book: SubnetBook, mac: string, ip: number, now: number): WriteOp | null {
    const h = book.byIp.get(ip);
    if (!h || h.mac !== mac || (h.state !== 'offered' && h.state !== 'bound') || h.expiresAt <= now) return null;
    const until = now + this.opts.declineQuarantineSeconds * 1000;
    this.setHolding(book, { ip, mac, state: 'declined', expiresAt: until, clientId: null, since: now });
    return { kind: 'lease', lease: { ip: formatIpv4(ip), mac, subnetId: book.subnet.id, state: 'declined', expiresAt: until, clientId: null, hostname: null }, now };
  }

  /** Forgets an offer the client turned down (it chose another server); whether there was one. */
  dropOffer(book: SubnetBook, mac: string): boolean {
    const h = book.byMac.get(mac);
    if (!h || h.state !== 'offered') return false;
    book.byMac.delete(mac);
    book.byIp.delete(h.ip);
    book.pool.release(h.ip);
    return true;
  }

  private holdOffer(book: SubnetBook, mac: string, ip: number, now: number): number {
    const current = book.byMac.get(mac);
    // An existing bound lease stays bound; only a new address becomes an offer.
    if (current && current.ip === ip && current.state === 'bound' && current.expiresAt > now) return ip;
    this.setHolding(book, { ip, mac, state: 'offered', expiresAt: now + this.opts.offerHoldSeconds * 1000, clientId: null, since: now });
    return ip;
  }

  /**
   * With other nodes on the segment, a client this node holds no live lease for may hold one
   * another node granted moments ago (a dead node's clients come over, or a peer's takeover
   * ends): the database has it before the ACK left, though following the
   * table (once a second, by time stamps) may not have brought it here yet. Asking for the
   * row keeps the client on its address instead of moving it to a new one.
   */
  private lookUp(book: SubnetBook, mac: string, now: number): void {
    const current = book.byMac.get(mac);
    if (current && current.state === 'bound' && current.expiresAt > now) return;
    const row = this.source.leaseOf(mac, book.subnet.id);
    if (row) this.learn(row, now);
  }

  /** Takes in the rows other nodes wrote since the last look. */
  private follow(now: number): void {
    let newest = this.followedTo;
    for (const row of this.source.leasesChangedSince(this.followedTo - CLOCK_SLACK_MS)) {
      this.learn(row, now);
      if (row.updatedAt > newest) newest = row.updatedAt;
    }
    this.followedTo = newest;
  }

  /** Forgets a holding the database gave to another MAC. */
  private evict(book: SubnetBook, h: Holding): void {
    if (book.byMac.get(h.mac) === h) book.byMac.delete(h.mac);
    book.byIp.delete(h.ip);
  }

  private setHolding(book: SubnetBook, h: Holding): void {
    const previous = book.byMac.get(h.mac);
    if (previous && previous.ip !== h.ip) {
      book.byIp.delete(previous.ip);
      book.pool.release(previous.ip);
    }
    book.byMac.set(h.mac, h);
    book.byIp.set(h.ip, h);
    book.pool.hold(h.ip, h.expiresAt);
  }

  private load(subnet: Subnet): SubnetBook {
    const book: SubnetBook = {
      subnet,
      cidr: parseCidr(subnet.cidr)!,
      pool: new AddressPool(subnet.pools.map(parseIpv4Range), this.opts.share),
      byMac: new Map(),
      byIp: new Map(),
    };
    for (const l of this.source.leasesIn(subnet.id)) {
      const h: Holding = { ip: parseIpv4(l.ip)!, mac: l.mac, state: l.state, expiresAt: l.expiresAt, clientId: l.clientId, since: l.updatedAt };
      book.byMac.set(h.mac, h);
      book.byIp.set(h.ip, h);
      if (h.state !== 'released') book.pool.hold(h.ip, h.expiresAt);
    }
    return book;
  }
}
