import type { SqlDb, SqlStatement } from './sql.js';
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

/** When a claim may take an address's row: the row is the claimant's own, or no longer live. */
const CLAIMABLE = "leases.mac = excluded.mac OR leases.state = 'released' OR leases.expires_at <= excluded.updated_at";

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
  private many: { claim: SqlStatement; force: SqlStatement; dropOthers: SqlStatement } | null = null;
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
       WHERE ${CLAIMABLE} OR ? = 1`,
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

  /**
   * claim() for many leases, in order; no two may share an address, nor a MAC within a subnet.
   * Returns the addresses it refused. On PostgreSQL in a few statements (one round trip each)
   * rather than two per lease.
   */
  claimMany(claims: readonly { lease: Lease; now: number; force: boolean }[]): string[] {
    if (!this.db.dialect.roundTrips || claims.length === 1) {
      return claims.filter(({ lease, now, force }) => !this.claim(lease, now, force)).map(({ lease }) => lease.ip);
    }
    const many = (this.many ??= this.prepareMany());
    // Address order: two writers side by side claiming some of the same addresses then wait on
    // each other in one order rather than deadlock.
    claims = [...claims].sort((a, b) => parseIpv4(a.lease.ip)! - parseIpv4(b.lease.ip)!);
    const row = ({ lease: l, now }: { lease: Lease; now: number }) => [parseIpv4(l.ip)!, l.mac, l.subnetId, l.state, l.expiresAt, l.clientId, l.hostname, now] as const;
    const won = new Set<number>();
    for (const [statement, group] of [
      [many.claim, claims.filter((c) => !c.force)],
      [many.force, claims.filter((c) => c.force)],
    ] as const) {
      if (group.length === 0) continue;
      for (const r of statement.all(JSON.stringify(group.map(row))) as { ip: number }[]) won.add(r.ip);
    }
    const written = claims.map(row).filter((r) => won.has(r[0]));
    if (written.length > 0) {
      const d = this.db.dialect;
      many.dropOthers.run(
        d.list(written.map((r) => r[1])),
        d.list(written.map((r) => `${r[1]} ${r[2]}`)),
        d.list(written.map((r) => `${r[1]} ${r[2]} ${r[0]}`)),
      );
    }
    return claims.filter(({ lease }) => !won.has(parseIpv4(lease.ip)!)).map(({ lease }) => lease.ip);
  }

  /** claimMany()'s statements: the claims (as claimStmt decides them), the forced ones, then the rows each written MAC held elsewhere in its subnet. */
  private prepareMany(): { claim: SqlStatement; force: SqlStatement; dropOthers: SqlStatement } {
    const d = this.db.dialect;
    const upsert = (guard: string) =>
      this.db.prepare(
        `INSERT INTO leases (ip, mac, subnet_id, state, expires_at, client_id, hostname, updated_at)
         SELECT ${d.tupleAt(0, 'int')}, ${d.tupleAt(1, 'text')}, ${d.tupleAt(2, 'int')}, ${d.tupleAt(3, 'text')}, ${d.tupleAt(4, 'int')},
           ${d.tupleAt(5, 'text')}, ${d.tupleAt(6, 'text')}, ${d.tupleAt(7, 'int')}
         FROM ${d.tuples('?')}
         ON CONFLICT (ip) DO UPDATE SET mac=excluded.mac, subnet_id=excluded.subnet_id, state=excluded.state,
           expires_at=excluded.expires_at, client_id=excluded.client_id, hostname=excluded.hostname, updated_at=excluded.updated_at
         ${guard}
         RETURNING ip`,
      );
    return {
      claim: upsert(`WHERE ${CLAIMABLE}`),
      force: upsert(''),
      // Keys as text, so that the MAC index finds the candidates through plain IN lists.
      dropOthers: this.db.prepare(
        `DELETE FROM leases WHERE mac IN ${d.listRows('text')}
           AND (mac || ' ' || subnet_id) IN ${d.listRows('text')}
           AND (mac || ' ' || subnet_id || ' ' || ip) NOT IN ${d.listRows('text')}`,
      ),
    };
  }

  /** The MAC's most recent lease row in a subnet, whatever its state (to hand the same address back). */
  forMac(mac: string, subnetId: number): StoredLease | null {
    const r = this.byMacStmt.get(mac, subnetId) as LeaseRow | undefined;
    return r ? toStored(r) : null;
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
