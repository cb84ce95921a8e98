import type { Db } from './db.js';
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
export class SqliteAuditLog {
  private readonly insert;

  constructor(private readonly db: Db) {
    // Prepared once: the boot path audits every machine it discovers.
    this.insert = db.prepare('INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
  }

  record(actor: Actor, action: string, target: string, detail: Record<string, unknown> = {}): void {
    this.insert.run(Date.now(), actor, action, target, JSON.stringify(detail));
  }

  list(limit = 100): AuditEntry[] {
    const rows = this.db.prepare('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?').all(limit) as {
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
