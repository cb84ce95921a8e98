import type { SqlDb } from './sql.js';
import type { Actor } from './types.js';
import { iso } from './util.js';

export interface AuditEntry {
  id: number;
  at: string;
  actor: Actor;
  action: string;
  target: string;
  detail: Record<string, unknown>;
}

/** Who changed what, when: one row per accepted write, in the same transaction as the write. */
export class SqlAuditLog {
  private readonly insert;

  constructor(private readonly db: SqlDb) {
    // Prepared once: the boot path audits every machine it discovers.
    this.insert = db.prepare('INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
  }

  record(actor: Actor, action: string, target: string, detail: Record<string, unknown> = {}): void {
    this.insert.run(Date.now(), actor, action, target, JSON.stringify(detail));
  }

  /** Records several entries in one statement, in order: for the boot path's batches. */
  recordMany(entries: readonly [actor: Actor, action: string, target: string][]): void {
    if (entries.length === 0) return;
    const d = this.db.dialect;
    this.db
      .prepare(
        `INSERT INTO audit_log (at, actor, action, target, detail)
         SELECT ?, ${d.tupleAt(0, 'text')}, ${d.tupleAt(1, 'text')}, ${d.tupleAt(2, 'text')}, '{}' FROM ${d.tuples('?')}`,
      )
      .run(Date.now(), JSON.stringify(entries));
  }

  /** Newest first; `since` in ms since the epoch, `actor` exact (e.g. `token:ci`), `before` an id for the next page. */
  list(filter: { since?: number; actor?: string; before?: number; limit?: number } = {}): AuditEntry[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.since !== undefined) (where.push('at >= ?'), args.push(filter.since));
    if (filter.actor !== undefined) (where.push('actor = ?'), args.push(filter.actor));
    if (filter.before !== undefined) (where.push('id < ?'), args.push(filter.before));
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, filter.limit ?? 100) as {
      id: number;
      at: number;
      actor: string;
      action: string;
      target: string;
      detail: string;
    }[];
    return rows.map((r) => ({ ...r, at: iso(r.at), detail: JSON.parse(r.detail) }));
  }
}
