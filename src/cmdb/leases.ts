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
 * memory and writes here, in a transaction, before each ACK leaves.
 */
export class SqlLeaseStore {
  private readonly upsertStmt;
  private readonly dropOthersStmt;
  private many: { upsert: SqlStatement; dropOthers: SqlStatement } | null = null;
  private readonly byMacStmt;
  private readonly byIpStmt;
  private readonly activeStmt;

  constructor(private readonly db: SqlDb) {
    this.upsertStmt = db.prepare(
      `INSERT INTO leases (ip, mac, subnet_id, state, expires_at, client_id, hostname, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ip) DO UPDATE SET mac=excluded.mac, subnet_id=excluded.subnet_id, state=excluded.state,
         expires_at=excluded.expires_at, client_id=excluded.client_id, hostname=excluded.hostname, updated_at=excluded.updated_at`,
    );
    this.dropOthersStmt = db.prepare('DELETE FROM leases WHERE mac = ? AND subnet_id = ? AND ip != ?');
    this.byMacStmt = db.prepare('SELECT * FROM leases WHERE mac = ? AND subnet_id = ? ORDER BY updated_at DESC LIMIT 1');
    this.byIpStmt = db.prepare('SELECT * FROM leases WHERE ip = ?');
    this.activeStmt = db.prepare("SELECT * FROM leases WHERE mac = ? AND state = 'bound' AND expires_at > ? ORDER BY updated_at DESC LIMIT 1");
  }

  /** Writes a lease for an address and drops any other address the MAC held in that subnet. */
  put(lease: Lease, now = Date.now()): void {
    const ip = parseIpv4(lease.ip)!;
    // Positional: binding by name costs a property lookup per column, once per DHCP exchange.
    this.upsertStmt.run(ip, lease.mac, lease.subnetId, lease.state, lease.expiresAt, lease.clientId, lease.hostname, now);
    this.dropOthersStmt.run(lease.mac, lease.subnetId, ip);
  }

  putMany(leases: readonly { lease: Lease; now: number }[]): void {
    if (!this.db.dialect.roundTrips || leases.length === 1) {
      for (const { lease, now } of leases) this.put(lease, now);
      return;
    }
    const many = (this.many ??= this.prepareMany());
    const rows = leases.map(({ lease: l, now }) => [parseIpv4(l.ip)!, l.mac, l.subnetId, l.state, l.expiresAt, l.clientId, l.hostname, now] as const);
    many.upsert.run(JSON.stringify(rows));
    const d = this.db.dialect;
    many.dropOthers.run(
      d.list(rows.map((r) => r[1])),
      d.list(rows.map((r) => `${r[1]} ${r[2]}`)),
      d.list(rows.map((r) => `${r[1]} ${r[2]} ${r[0]}`)),
    );
  }

  /** putMany()'s statements: the upsert, then the rows each written MAC held elsewhere in its subnet. */
  private prepareMany(): { upsert: SqlStatement; dropOthers: SqlStatement } {
    const d = this.db.dialect;
    return {
      upsert: this.db.prepare(
        `INSERT INTO leases (ip, mac, subnet_id, state, expires_at, client_id, hostname, updated_at)
         SELECT ${d.tupleAt(0, 'int')}, ${d.tupleAt(1, 'text')}, ${d.tupleAt(2, 'int')}, ${d.tupleAt(3, 'text')}, ${d.tupleAt(4, 'int')},
           ${d.tupleAt(5, 'text')}, ${d.tupleAt(6, 'text')}, ${d.tupleAt(7, 'int')}
         FROM ${d.tuples('?')}
         ON CONFLICT (ip) DO UPDATE SET mac=excluded.mac, subnet_id=excluded.subnet_id, state=excluded.state,
           expires_at=excluded.expires_at, client_id=excluded.client_id, hostname=excluded.hostname, updated_at=excluded.updated_at`,
      ),
      // Keys as text, so that the MAC index finds the candidates through plain IN lists.
      dropOthers: this.db.prepare(
        `DELETE FROM leases WHERE mac IN ${d.listRows('text')}
           AND (mac || ' ' || subnet_id) IN ${d.listRows('text')}
           AND (mac || ' ' || subnet_id || ' ' || ip) NOT IN ${d.listRows('text')}`,
      ),
    };
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

  inSubnet(subnetId: number): Lease[] {
    return (this.db.prepare('SELECT * FROM leases WHERE subnet_id = ?').all(subnetId) as LeaseRow[]).map(toLease);
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
