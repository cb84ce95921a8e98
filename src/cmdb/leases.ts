import type { SqlDb } from './sql.js';
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';
import { iso } from './util.js';

export type LeaseState = 'offered' | 'bound' | 'released' | 'declined';
export const LEASE_STATES: readonly LeaseState[] = ['offered', 'bound', 'released', 'declined'];

export interface Lease {
  ip: string;
  mac: string;
  subnetId: number;
  state: LeaseState;
  expiresAt: number;
  clientId: string | null;
  hostname: string | null;
}

/** A lease row with when it was last written (nodes follow each other's writes by it). */
export interface StoredLease extends Lease {
  updatedAt: number;
}

export interface LeaseView extends Omit<Lease, 'expiresAt'> {
  expiresAt: string;
  updatedAt: string;
}

interface LeaseRow {
  ip: number;
  mac: string;
  subnet_id: number;
  state: LeaseState;
  expires_at: number;
  client_id: string | null;
  hostname: string | null;
  updated_at: number;
}

const toStored = (r: LeaseRow): StoredLease => ({ ...toLease(r), updatedAt: r.updated_at });

const toLease = (r: LeaseRow): Lease => ({
  ip: formatIpv4(r.ip),
  mac: r.mac,
  subnetId: r.subnet_id,
  state: r.state,
  expiresAt: r.expires_at,
  clientId: r.client_id,
  hostname: r.hostname,
});

/**
 * DHCP leases, one row per address (the primary key makes "one address, two MACs" impossible)
 * and at most one address per MAC per subnet. The DHCP server keeps its free-address index in
 * memory and claims here, in a transaction, before each ACK leaves: the claim is where the
 * address is decided, since other nodes may have leased it meanwhile.
 */
export class SqlLeaseStore {
  private readonly claimStmt;
  private readonly dropOthersStmt;
  private readonly changedStmt;
  private readonly byMacStmt;
  private readonly byIpStmt;
  private readonly activeStmt;

  constructor(private readonly db: SqlDb) {
    // Another MAC's row wins while it is live (bound or quarantined, unexpired), unless forced.
    this.claimStmt = db.prepare(
      `INSERT INTO leases (ip, mac, subnet_id, state, expires_at, client_id, hostname, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ip) DO UPDATE SET mac=excluded.mac, subnet_id=excluded.subnet_id, state=excluded.state,
         expires_at=excluded.expires_at, client_id=excluded.client_id, hostname=excluded.hostname, updated_at=excluded.updated_at
       WHERE leases.mac = excluded.mac OR leases.state = 'released' OR leases.expires_at <= excluded.updated_at OR ? = 1`,
    );
    this.changedStmt = db.prepare('SELECT * FROM leases WHERE updated_at > ?');
    this.dropOthersStmt = db.prepare('DELETE FROM leases WHERE mac = ? AND subnet_id = ? AND ip != ?');
    this.byMacStmt = db.prepare('SELECT * FROM leases WHERE mac = ? AND subnet_id = ? ORDER BY updated_at DESC LIMIT 1');
    this.byIpStmt = db.prepare('SELECT * FROM leases WHERE ip = ?');
    this.activeStmt = db.prepare("SELECT * FROM leases WHERE mac = ? AND state = 'bound' AND expires_at > ? ORDER BY updated_at DESC LIMIT 1");
  }

  /**
   * Writes a lease for an address unless another MAC holds it live (then nothing is written
   * and false returned); `force` (a reservation) takes it regardless. Drops any other address
   * the MAC held in that subnet.
   */
  claim(lease: Lease, now = Date.now(), force = false): boolean {
    const ip = parseIpv4(lease.ip)!;
    // Positional: binding by name costs a property lookup per column, once per DHCP exchange.
    const won = this.claimStmt.run(ip, lease.mac, lease.subnetId, lease.state, lease.expiresAt, lease.clientId, lease.hostname, now, force ? 1 : 0).changes > 0;
    if (won) this.dropOthersStmt.run(lease.mac, lease.subnetId, ip);
    return won;
  }

  /** The row of an address with when it was written, if any. */
  stored(ip: string): StoredLease | null {
    const r = this.byIpStmt.get(parseIpv4(ip)) as LeaseRow | undefined;
    return r ? toStored(r) : null;
  }

  /** Rows written after `since` (ms), by any node. */
  changedSince(since: number): StoredLease[] {
    return (this.changedStmt.all(since) as LeaseRow[]).map(toStored);
  }

  /** The MAC's most recent lease row in a subnet, whatever its state (to hand the same address back). */
  forMac(mac: string, subnetId: number): Lease | null {
    const r = this.byMacStmt.get(mac, subnetId) as LeaseRow | undefined;
    return r ? toLease(r) : null;
  }

  get(ip: string): Lease | null {
    const r = this.byIpStmt.get(parseIpv4(ip)) as LeaseRow | undefined;
    return r ? toLease(r) : null;
  }

  /** A bound, unexpired lease of this MAC in any subnet. */
  activeFor(mac: string, now = Date.now()): Lease | null {
    const r = this.activeStmt.get(mac, now) as LeaseRow | undefined;
    return r ? toLease(r) : null;
  }

  inSubnet(subnetId: number): StoredLease[] {
    return (this.db.prepare('SELECT * FROM leases WHERE subnet_id = ?').all(subnetId) as LeaseRow[]).map(toStored);
  }

  setState(ip: string, mac: string, state: LeaseState, expiresAt: number, now = Date.now()): boolean {
    return (
      this.db
        .prepare('UPDATE leases SET state = ?, expires_at = ?, updated_at = ? WHERE ip = ? AND mac = ?')
        .run(state, expiresAt, now, parseIpv4(ip), mac).changes > 0
    );
  }

  list(filter: { subnetId?: number; state?: LeaseState; limit?: number } = {}): LeaseView[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.subnetId !== undefined) {
      where.push('subnet_id = ?');
      args.push(filter.subnetId);
    }
    if (filter.state) {
      where.push('state = ?');
      args.push(filter.state);
    }
    const sql = `SELECT * FROM leases ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ip LIMIT ${Math.min(filter.limit ?? 10_000, 100_000)}`;
    return (this.db.prepare(sql).all(...args) as LeaseRow[]).map((r) => ({ ...toLease(r), expiresAt: iso(r.expires_at), updatedAt: iso(r.updated_at) }));
  }

  count(state?: LeaseState): number {
    const row = state ? this.db.prepare('SELECT count(*) AS n FROM leases WHERE state = ?').get(state) : this.db.prepare('SELECT count(*) AS n FROM leases').get();
    return (row as { n: number }).n;
  }
}
