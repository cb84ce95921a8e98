import { notFound } from './errors.js';
import { MachineChecker, type CheckedMachine, type PendingOwners } from './machine-check.js';
import { selectMachines, toMachine, machineConditions, type MachineRow } from './machine-rows.js';
import { normalizeMac } from '../net/mac.js';
import type { Machine, MachineFilter, MachineInput, MachineState, SecureBoot } from './types.js';
import type { FlatFacts } from '../facts/types.js';
import type { SqlSubnetStore } from './subnets.js';
import { resolveRef } from './refs.js';
import { matchesSelector, type Selector } from './selector.js';
import type { SqlDb, SqlType } from './sql.js';

/**
 * What a checked plan expects to find when it is applied: the owner of each MAC, hostname
 * (lower case) and address it writes (null: none), each updated machine's updated_at, and
 * the subnets and images it refers to.
 */
export interface PlanClaims {
  macs: Map<string, number | null>;
  hostnames: Map<string, number | null>;
  ips: Map<string, number | null>;
  updatedAt: Map<number, number>;
  subnetIds: Set<number>;
  imageIds: Set<string>;
}

export class SqlMachineStore {
  private readonly byMac;
  private readonly byId;
  private readonly byHostname;
  private readonly ownerOfMac;
  private readonly insertMachine;
  private readonly insertMac;
  private readonly lastSeen;
  private readonly lastSeenMany;
  private readonly checker: MachineChecker;
  private readonly updateMachine;
  private readonly deleteMacs;

  constructor(
    private readonly db: SqlDb,readonly subnets: SqlSubnetStore,
  ) {
    const SELECT = selectMachines(db.dialect);
    // The boot path looks machines up by MAC for every packet, touches them at every boot step
    // and registers unknown MACs as they appear: keep those statements prepared.
    this.byMac = db.prepare(`${SELECT} WHERE m.id = (SELECT machine_id FROM machine_macs WHERE mac = ?)`);
    this.byId = db.prepare(`${SELECT} WHERE m.id = ?`);
    this.byHostname = db.prepare(`${SELECT} WHERE m.hostname = ?`);
    this.ownerOfMac = db.prepare('SELECT machine_id FROM machine_macs WHERE mac = ?').pluck();
    this.insertMachine = db
      .prepare(
        `INSERT INTO machines (hostname, uuid, site, labels, state, image_name, image_channel, image_id, kernel_args,
           vars, ip, subnet_id, secure_boot, created_at, updated_at)
         VALUES (@hostname, @uuid, @site, @labels, @state, @imageName, @imageChannel, @imageId, @kernelArgs, @vars,
           @ip, @subnetId, @secureBoot, @now, @now) RETURNING id`,
      )
      .pluck();
    this.insertMac = db.prepare('INSERT INTO machine_macs (mac, machine_id, position) VALUES (?, ?, ?)');
    this.lastSeen = db.prepare('UPDATE machines SET last_seen_at = ? WHERE id = ?');
    this.lastSeenMany = db.prepare(`UPDATE machines SET last_seen_at = ? WHERE ${db.dialect.inList('id', 'int')}`);
    // The update runs once per row of a bulk import: prepared once, not per call.
    this.updateMachine = db.prepare(
      `UPDATE machines SET hostname=@hostname, uuid=@uuid, site=@site, labels=@labels, state=@state,
         image_name=@imageName, image_channel=@imageChannel, image_id=@imageId, kernel_args=@kernelArgs, vars=@vars,
         ip=@ip, subnet_id=@subnetId, secure_boot=@secureBoot, updated_at=@now
       WHERE id=@id`,
    );
    this.deleteMacs = db.prepare('DELETE FROM machine_macs WHERE machine_id = ?');
    this.checker = new MachineChecker(db, subnets, this);
  }

  /** Moves whenever an existing machine changes, in any process (triggers, migration 3): see MachineCache. */
  changeCount(): number {
    return this.db.changeCount('machines');
  }

  /** Moves whenever a MAC is registered, in any process (migration 16): see MachineCache. */
  registeredCount(): number {
    return this.db.changeCount('macs');
  }

  ownWriteCount(): number {
    return this.db.ownWrites();
  }

  /**
   * By MAC (any common spelling), numeric id or hostname, or a typed `mac:`, `id:`, `hostname:`
   * ref. A bare ref two machines answer to (rows older than the hostname rule) is a conflict.
   */
  find(ref: string | number): Machine | null {
    if (typeof ref === 'number') return this.row(this.byId.get(ref));
    return resolveRef('machine', ref, {
      mac: (mac) => this.row(this.byMac.get(mac)),
      id: (id) => this.row(this.byId.get(Number(id))),
      hostname: (name) => this.row(this.byHostname.get(name)),
    }, (m) => (m.hostname ? `${m.id} (${m.hostname})` : `${m.id} (${m.macs[0]})`));
  }

  /** By MAC only (any common spelling); null for text that is not a MAC. */
  findByMac(text: string): Machine | null {
    const mac = normalizeMac(text);
    return mac ? this.byCanonicalMac(mac) : null;
  }

  private row(r: unknown): Machine | null {
    return r ? toMachine(r as MachineRow) : null;
  }

  get(ref: string | number): Machine {
    const m = this.find(ref);
    if (!m) throw notFound(`machine ${ref}`);
    return m;
  }

  /** The id of the machine owning a canonical MAC, without loading the machine. */
  idOfMac(mac: string): number | null {
    return (this.ownerOfMac.get(mac) as number | undefined) ?? null;
  }

  /** Lookup by a canonical MAC only: the hot path for DHCP, TFTP and HTTP boot. */
  byCanonicalMac(mac: string): Machine | null {
    const row = this.byMac.get(mac);
    return row ? toMachine(row as MachineRow) : null;
  }

  /**
   * Machines that may enforce Secure Boot: their own setting is on, or they inherit one
   * (a subnet's or `global`) where anything says on. A superset: decide() has the last word.
   */
  mayEnforceSecureBoot(global: SecureBoot): Machine[] {
    return this.db
      .prepare(
        `${selectMachines(this.db.dialect)} WHERE m.state != 'retired' AND (m.secure_boot = 'on'
           OR (m.secure_boot IS NULL AND (? = 'on' OR EXISTS (SELECT 1 FROM subnets WHERE secure_boot = 'on'))))`,
      )
      .all(global)
      .map((r) => toMachine(r as MachineRow));
  }

  list(filter: MachineFilter = {}): Machine[] {
    const { where, args } = machineConditions(this.db.dialect, filter);
    for (const f of filter.facts ?? []) {
      where.push(this.db.dialect.fact('m.facts', f.op));
      args.push(f.key, this.db.dialect.factValue(f.value));
    }
    if (filter.after !== undefined) {
      where.push('m.id > ?');
      args.push(filter.after);
    }
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 10_000);
    const sql = `${selectMachines(this.db.dialect)} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY m.id LIMIT ${limit}`;
    return (this.db.prepare(sql).all(...args) as MachineRow[]).map(toMachine);
  }

  /** Every machine the selector matches, retired ones left out, in id order. */
  matching(selector: Selector): Machine[] {
    const out: Machine[] = [];
    for (let page = this.list({ limit: 10_000 }); page.length > 0; page = this.list({ limit: 10_000, after: page[page.length - 1]!.id })) {
      for (const m of page) if (m.state !== 'retired' && matchesSelector(selector, m)) out.push(m);
    }
    return out;
  }

  count(state?: MachineState): number {
    const row = state
      ? this.db.prepare('SELECT count(*) AS n FROM machines WHERE state = ?').get(state)
      : this.db.prepare('SELECT count(*) AS n FROM machines').get();
    return (row as { n: number }).n;
  }

  create(input: MachineInput): Machine {
    return this.get(this.add(input));
  }

  /** create() without reading the new machine back: for the boot path, which needs only its id. */
  add(input: MachineInput): number {
    const v = this.checker.check(input, null);
    const id = this.insertMachine.get({ ...v, now: Date.now() }) as number;
    this.writeMacs(id, v.macs);
    return id;
  }

  /**
   * Registers MACs as new `discovered` machines, seen at `at`: the boot path's registration, in
   * three statements (ids taken, machines, MACs); their ids, in order. Nothing to validate
   * (canonical MACs from packets, every other field at its default), so it skips add()'s checks.
   * Writers running side by side may register the same MAC at once: the MAC goes to whichever
   * commits first (ON CONFLICT DO NOTHING waits for it), and the other's machine is removed
   * again; its id is null here. MACs are inserted sorted, so two such writers wait on each
   * other's MACs in one order rather than deadlock.
   */
  addDiscoveredMany(macs: readonly string[], at = Date.now()): (number | null)[] {
    if (macs.length === 0) return [];
    const d = this.db.dialect;
    const ids = this.db.prepare(d.newIds('machines')).pluck().all(macs.length) as number[];
    this.db
      .prepare(`INSERT INTO machines (id, state, created_at, updated_at, last_seen_at) SELECT value, 'discovered', ?, ?, ? FROM ${d.listRows('int')} AS v`)
      .run(at, at, at, d.list(ids));
    const idOf = new Map(macs.map((mac, i) => [mac, ids[i]!]));
    const sorted = [...idOf].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // `WHERE true`: SQLite would read ON CONFLICT after a FROM as a join's ON.
    const won = new Set(
      this.db
        .prepare(
          `INSERT INTO machine_macs (mac, machine_id, position) SELECT ${d.tupleAt(0, 'text')}, ${d.tupleAt(1, 'int')}, 0 FROM ${d.tuples('?')} WHERE true
           ON CONFLICT (mac) DO NOTHING RETURNING mac`,
        )
        .pluck()
        .all(JSON.stringify(sorted)) as string[],
    );
    const lost = sorted.filter(([mac]) => !won.has(mac)).map(([, id]) => id);
    if (lost.length > 0) this.db.prepare(`DELETE FROM machines WHERE ${d.inList('id', 'int')}`).run(d.list(lost));
    return macs.map((mac) => (won.has(mac) ? idOf.get(mac)! : null));
  }

  ownersOf(macs: readonly string[]): Map<string, number> {
    if (macs.length === 0) return new Map();
    const d = this.db.dialect;
    const rows = this.db.prepare(`SELECT mac, machine_id FROM machine_macs WHERE ${d.inList('mac', 'text')}`).all(d.list(macs)) as { mac: string; machine_id: number }[];
    return new Map(rows.map((r) => [r.mac, r.machine_id]));
  }

  update(ref: string | number, input: MachineInput): Machine {
    const existing = this.get(ref);
    this.write(existing.id, this.checker.check(input, existing), input.macs !== undefined);
    return this.get(existing.id);
  }

  /**
   * Checks `input` as create() (existing = null) or update() would, without writing: for a bulk
   * import, which checks every row before taking the write lock. `others` answers for rows of
   * the same import that are not in the database yet.
   */
  check(input: MachineInput, existing: Machine | null, others: PendingOwners): CheckedMachine {
    return this.checker.check(input, existing, others);
  }

  /** Writes checked values over machine `id` (replacing its MACs when macsChanged). */
  write(id: number, v: CheckedMachine, macsChanged: boolean, now = Date.now()): void {
    this.updateMachine.run({ ...v, id, now });
    if (macsChanged) {
      this.deleteMacs.run(id);
      this.writeMacs(id, v.macs);
    }
  }

  /**
   * Inserts checked new machines in two statements (the engine reads each array itself), with
   * ids taken here so their MACs can go in the same way. Call it in a write transaction.
   */
  insertMany(machines: CheckedMachine[], now = Date.now()): void {
    if (machines.length === 0) return;
    const d = this.db.dialect;
    const ids = this.db.prepare(d.newIds('machines')).pluck().all(machines.length) as number[];
    const rows: unknown[] = [];
    const macs: unknown[] = [];
    machines.forEach((v, n) => {
      const id = ids[n]!;
      rows.push([id, v.hostname, v.uuid, v.site, v.labels, v.state, v.imageName, v.imageChannel, v.imageId, v.kernelArgs, v.vars, v.ip, v.subnetId, v.secureBoot]);
      v.macs.forEach((mac, i) => macs.push([mac, id, i]));
    });
    const types: SqlType[] = ['int', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'int', 'text'];
    this.db
      .prepare(
        `INSERT INTO machines (id, hostname, uuid, site, labels, state, image_name, image_channel, image_id, kernel_args,
           vars, ip, subnet_id, secure_boot, created_at, updated_at)
         SELECT ${types.map((t, i) => d.tupleAt(i, t)).join(', ')}, @now, @now FROM ${d.tuples('@rows')}`,
      )
      .run({ rows: JSON.stringify(rows), now });
    this.db
      .prepare(`INSERT INTO machine_macs (mac, machine_id, position) SELECT ${d.tupleAt(0, 'text')}, ${d.tupleAt(1, 'int')}, ${d.tupleAt(2, 'int')} FROM ${d.tuples('?')}`)
      .run(JSON.stringify(macs));
  }

  /**
   * What changed since `plan` was checked outside the write transaction: MACs, hostnames and
   * addresses now owned by another machine, machines edited meanwhile, subnets or images gone.
   * One query per kind over the whole plan. Call it in the write transaction that applies it.
   */
  staleness(plan: PlanClaims): string[] {
    const problems: string[] = [];
    const d = this.db.dialect;
    const owners = (sql: string, claims: Map<string, number | null>, what: string) => {
      if (claims.size === 0) return;
      for (const r of this.db.prepare(sql).all(d.list(claims.keys())) as { key: string; id: number }[]) {
        const mine = claims.get(r.key) ?? claims.get(r.key.toLowerCase());
        if (mine !== r.id) problems.push(`${what} ${r.key} was given to machine ${r.id} meanwhile`);
      }
    };
    owners(`SELECT mac AS key, machine_id AS id FROM machine_macs WHERE ${d.inList('mac', 'text')}`, plan.macs, 'MAC');
    owners(`SELECT hostname AS key, id FROM machines WHERE ${d.inList('hostname', 'nocase')}`, plan.hostnames, 'hostname');
    owners(`SELECT ip AS key, id FROM machines WHERE ${d.inList('ip', 'text')}`, plan.ips, 'ip');
    const edited = this.db
      .prepare(
        `SELECT ${d.tupleAt(0, 'int')} AS id FROM ${d.tuples('?')}
         WHERE NOT EXISTS (SELECT 1 FROM machines WHERE id = ${d.tupleAt(0, 'int')} AND updated_at = ${d.tupleAt(1, 'int')})`,
      )
      .pluck()
      .all(JSON.stringify([...plan.updatedAt])) as number[];
    for (const id of edited) problems.push(`machine ${id} was changed meanwhile`);
    const gone = (table: string, type: SqlType, ids: Set<unknown>, what: string) => {
      const sql = `SELECT value FROM ${d.listRows(type)} AS v WHERE value NOT IN (SELECT id FROM ${table})`;
      for (const id of this.db.prepare(sql).pluck().all(d.list(ids))) problems.push(`${what} ${id} was deleted meanwhile`);
    };
    gone('subnets', 'int', plan.subnetIds, 'subnet');
    gone('images', 'text', plan.imageIds, 'image');
    return problems;
  }

  /** Retiring keeps the record (so the MAC is still recognised) but it boots nothing. */
  retire(ref: string): Machine {
    const m = this.get(ref);
    this.db.prepare("UPDATE machines SET state='retired', ip=NULL, updated_at=? WHERE id=?").run(Date.now(), m.id);
    return this.get(m.id);
  }

  purge(ref: string): Machine {
    const m = this.get(ref);
    this.db.prepare('DELETE FROM machines WHERE id = ?').run(m.id);
    return m;
  }

  /**
   * Deletes up to `limit` `discovered` machines not seen since `seenBefore` whose MACs hold no
   * unexpired lease (bound, or quarantined after a DECLINE) at `now`; returns their MACs.
   * Call it in a write transaction.
   */
  expireDiscovered(seenBefore: number, now: number, limit: number): string[] {
    const stale = this.db
      .prepare(
        `SELECT m.id, ${this.db.dialect.joined('mac', 'machine_macs WHERE machine_id = m.id', 'position')} AS macs FROM machines m
         WHERE m.state = 'discovered' AND COALESCE(m.last_seen_at, m.created_at) < ?
           AND NOT EXISTS (SELECT 1 FROM machine_macs mm JOIN leases l ON l.mac = mm.mac
                           WHERE mm.machine_id = m.id AND l.state != 'released' AND l.expires_at > ?)
         LIMIT ?`,
      )
      .all(seenBefore, now, limit) as { id: number; macs: string | null }[];
    const remove = this.db.prepare('DELETE FROM machines WHERE id = ?');
    for (const { id } of stale) remove.run(id);
    return stale.flatMap((r) => (r.macs ? r.macs.split(',') : []));
  }

  /** Sets the machine's latest facts (flattened); the change counter moves, as selectors read them. */
  setFacts(id: number, facts: FlatFacts): void {
    this.db.prepare('UPDATE machines SET facts = ? WHERE id = ?').run(JSON.stringify(facts), id);
  }

  touchLastSeen(id: number, at = Date.now()): void {
    this.lastSeen.run(at, id);
  }

  /** Stamps every machine of `ids` as seen at `at`, in one statement. */
  touchMany(ids: readonly number[], at = Date.now()): void {
    this.lastSeenMany.run(at, this.db.dialect.list(ids));
  }

  private writeMacs(id: number, macs: string[]): void {
    macs.forEach((mac, i) => this.insertMac.run(mac, id, i));
  }

}
