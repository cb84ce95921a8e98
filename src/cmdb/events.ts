import type { SqlDb } from './sql.js';
import type { EventInput, LivEvent } from './types.js';
import { iso } from './util.js';

interface EventRow {
  id: number;
  at: number;
  type: string;
  mac: string | null;
  machine_id: number | null;
  image_id: string | null;
  detail: string;
}

/**
 * One event as addMany() takes it: at, type, mac, machine id, image id,
 * detail, and whether the machine id is to be read from the MAC's owner (a machine registered
 * in the same transaction, whose id the caller could not know).
 */
export type EventTuple = [number, string, string | null, number | null, string | null, Record<string, unknown>, boolean];

const toEvent = (r: EventRow): LivEvent => ({
  id: r.id,
  at: iso(r.at),
  type: r.type,
  mac: r.mac,
  machineId: r.machine_id,
  imageId: r.image_id,
  detail: JSON.parse(r.detail),
});

/** Event types that record a boot plan served to a machine (see boot/record.ts). */
export const SERVED_PLANS = ['ipxe-script', 'boot-config'] as const;

/**
 * The event log: boot stages (dhcp-ack, tftp, script, artifact, booted) and catalog and CMDB
 * happenings. It is the one bus: the boot trace reads it per MAC, SSE tails it by id, so every
 * process (DHCP, TFTP, each HTTP worker) publishes by inserting a row.
 */
export class SqlEventStore {
  private readonly insert;
  private readonly insertMany;
  private readonly tailStmt;
  private readonly servedStmt;
  private readonly latestStmt;

  constructor(private readonly db: SqlDb) {
    // Positional, not named: binding by name costs a property lookup per column, on every boot step.
    this.insert = db.prepare('INSERT INTO events (at, type, mac, machine_id, image_id, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id').pluck();
    // The engine walks the array itself, in order.
    const d = db.dialect;
    this.insertMany = db.prepare(
      `INSERT INTO events (at, type, mac, machine_id, image_id, detail)
       SELECT ${d.tupleAt(0, 'int')}, ${d.tupleAt(1, 'text')}, ${d.tupleAt(2, 'text')},
         CASE WHEN ${d.tupleAt(6, 'bool')} THEN (SELECT machine_id FROM machine_macs WHERE mac = ${d.tupleAt(2, 'text')}) ELSE ${d.tupleAt(3, 'int')} END,
         ${d.tupleAt(4, 'text')}, ${d.tupleAt(5, 'json')}
       FROM ${d.tuples('?')}`,
    );
    this.tailStmt = db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?');
    // events_mac (mac, id) walks one MAC's events newest first, to its last served plan.
    this.servedStmt = db.prepare(`SELECT id, image_id FROM events WHERE mac = ? AND type IN (${SERVED_PLANS.map((t) => `'${t}'`).join(', ')}) ORDER BY id DESC LIMIT 1`);
    // Health verdicts ask this for every machine a page or a rollout looks at: prepared once.
    this.latestStmt = db.prepare(
      `SELECT * FROM events WHERE ${d.inList('mac', 'text')} AND ${d.inList('type', 'text')} AND id > ? ORDER BY id DESC LIMIT 1`,
    );
  }

  /** Inserts one event. In a write beside others (shared), make it the transaction's last write: see SqlDb.orderIds. */
  add(e: EventInput): number {
    this.db.orderIds();
    return this.insert.get(e.at ?? Date.now(), e.type, e.mac ?? null, e.machineId ?? null, e.imageId ?? null, JSON.stringify(e.detail ?? {})) as number;
  }

  /** Inserts the events in one statement, in array order; as add(), the transaction's last write. */
  addMany(events: readonly EventTuple[]): void {
    this.db.orderIds();
    this.insertMany.run(JSON.stringify(events));
  }

  /** Events after `afterId`, oldest first: the SSE stream's cursor. */
  tail(afterId: number, limit = 500): LivEvent[] {
    return (this.tailStmt.all(afterId, limit) as EventRow[]).map(toEvent);
  }

  lastId(): number {
    return (this.db.prepare('SELECT coalesce(max(id), 0) AS id FROM events').get() as { id: number }).id;
  }

  /** The MACs with events after `afterId`, and the newest such event's id (`afterId` when there is none). */
  macsAfter(afterId: number): { macs: string[]; lastId: number } {
    const rows = this.db.prepare('SELECT mac, max(id) AS last FROM events WHERE id > ? GROUP BY mac').all(afterId) as { mac: string | null; last: number }[];
    let lastId = afterId;
    const macs: string[] = [];
    for (const r of rows) {
      if (r.last > lastId) lastId = r.last;
      if (r.mac !== null) macs.push(r.mac);
    }
    return { macs, lastId };
  }

  /**
   * The image of the newest boot plan served to any of these MACs (an iPXE script, or a GRUB or
   * pxelinux config over TFTP): null when that plan booted nothing, undefined when there was none.
   */
  lastServedImage(macs: string[]): string | null | undefined {
    let newest: { id: number; image_id: string | null } | undefined;
    for (const mac of macs) {
      const row = this.servedStmt.get(mac) as { id: number; image_id: string | null } | undefined;
      if (row && (!newest || row.id > newest.id)) newest = row;
    }
    return newest ? newest.image_id : undefined;
  }

  /** The newest `limit` events of one MAC, oldest first (a boot trace). */
  forMac(mac: string, limit = 200): LivEvent[] {
    const rows = this.db.prepare('SELECT * FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?').all(mac, limit) as EventRow[];
    return rows.reverse().map(toEvent);
  }

  /** The newest event of one of `types` for any of these MACs, after event `afterId`. */
  latestOf(macs: readonly string[], types: readonly string[], afterId = 0): LivEvent | null {
    const row = this.latestStmt.get(this.db.dialect.list(macs), this.db.dialect.list(types), afterId) as EventRow | undefined;
    return row ? toEvent(row) : null;
  }

  /** The newest `limit` events, newest first, optionally of some types only and of one MAC (the console's feed). */
  recent(limit: number, filter: { types?: string[]; mac?: string } = {}): LivEvent[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.types) {
      where.push(this.db.dialect.inList('type', 'text'));
      args.push(this.db.dialect.list(filter.types));
    }
    if (filter.mac !== undefined) {
      where.push('mac = ?');
      args.push(filter.mac);
    }
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, limit) as EventRow[]).map(toEvent);
  }

  /** Keeps the log bounded: drops events older than the cutoff. */
  prune(olderThanMs: number): number {
    return this.db.prepare('DELETE FROM events WHERE at < ?').run(olderThanMs).changes;
  }
}
