import { createHash } from 'node:crypto';
import type { ChangeCounter, SqlDb, SqlStatement } from '../sql.js';
import { POSTGRES } from './dialect.js';
import type { SyncPg } from './sync-pg.js';

/**
 * The stores' SQL turned into PostgreSQL's: `?` and `@name` become `$n`. Text in quotes is left
 * alone. Returns the text and, for named parameters, the name each `$n` takes.
 */
export function numberParameters(sql: string): { text: string; names: string[] | null } {
  let out = '';
  let n = 0;
  const names: string[] = [];
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unterminated quote in SQL: ${sql}`);
      out += sql.slice(i, end + 1);
      i = end;
    } else if (c === '?') {
      out += `$${++n}`;
    } else if (c === '@' && /[A-Za-z_]/.test(sql[i + 1] ?? '')) {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1))![0];
      let at = names.indexOf(name);
      if (at < 0) at = names.push(name) - 1;
      out += `$${at + 1}`;
      i += name.length;
    } else {
      out += c;
    }
  }
  if (n > 0 && names.length > 0) throw new Error(`SQL mixes ? and @name parameters: ${sql}`);
  return { text: out, names: names.length > 0 ? names : null };
}

/** A statement's text in PostgreSQL's form, as the stores' SQL gives it (numbered once per text). */
export interface ParsedSql {
  text: string;
  names: string[] | null;
  writes: boolean;
  /** Times this text has been run. */
  runs: number;
  /** The name it is prepared under, once it has been run twice. */
  name?: string;
}

/**
 * Statements kept prepared on each pooled connection at most: past it, texts are sent unprepared,
 * so no connection accumulates plans without bound.
 */
const MAX_PREPARED = 256;
/** Texts kept parsed at most; past it the unprepared ones are forgotten (a listing's filters make new texts). */
const MAX_PARSED = 2048;

/**
 * The advisory lock a transaction running beside others (a shared write) holds from taking event
 * ids to its commit: ids then commit in the order they were taken (see SqlDb.orderIds).
 */
export const ID_ORDER_LOCK = 0x6c697669;

/** A SqlDb on PostgreSQL, through a synchronous client (sync-pg.ts). */
export class PgDb implements SqlDb {
  readonly dialect = POSTGRES;
  private readonly parsed = new Map<string, ParsedSql>();
  private preparedCount = 0;
  /** Set by a write through this connection: the counters are then read again (see changeCount). */
  private wroteSinceCount = false;
  private writes = 0;
  private counted: Record<string, number> | null = null;
  /** Set by PostgresCmdb while its open transaction holds the write lock shared (other writers beside it). */
  sideBySide = false;

  constructor(readonly client: SyncPg) {}

  orderIds(): void {
    // Under the exclusive write lock nothing else takes ids meanwhile: no round trip needed.
    if (this.sideBySide) this.client.query('SELECT pg_advisory_xact_lock($1)', [ID_ORDER_LOCK]);
  }

  /**
   * The counter as last read, plus the NOTIFYs heard on its channel since: other processes'
   * changes move it without a query. This process's own writes are not announced back to it in
   * time (NOTIFY arrives after the commit, on another connection), so after a write of its own
   * the counters are read again.
   */
  changeCount(counter: ChangeCounter): number {
    if (this.counted === null || this.wroteSinceCount) {
      this.wroteSinceCount = false;
      // A counter is the sum of its rows (`name` and `name@bucket`: see the schema's V5).
      const rows = this.client.query("SELECT split_part(name, '@', 1) AS name, sum(n) AS n FROM change_counters GROUP BY 1", []).rows as { name: string; n: number }[];
      this.counted = Object.fromEntries(rows.map((r) => [r.name, r.n]));
    }
    return (this.counted[counter] ?? 0) + this.client.notified(`livery_${counter}`);
  }

  /** Called for every write through this connection. */
  wrote(): void {
    this.wroteSinceCount = true;
    this.writes++;
  }

  ownWrites(): number {
    return this.writes;
  }

  prepare(sql: string): SqlStatement {
    return new PgStatement(this, this.parse(sql));
  }

  /**
   * Counts a run of `p` and gives the name it runs prepared under, or undefined to send it
   * unprepared. A text is prepared from its second run on, whether a store built its statement
   * once in a constructor or builds it per call (setState, count): what repeats is what gains
   * from a kept plan, and a listing whose filters made a text seen once costs no server memory.
   */
  nameFor(p: ParsedSql): string | undefined {
    p.runs++;
    if (p.name === undefined && p.runs >= 2 && this.preparedCount < MAX_PREPARED) {
      p.name = `l${createHash('sha1').update(p.text).digest('hex').slice(0, 20)}`;
      this.preparedCount++;
    }
    return p.name;
  }

  /** The text numbered, from the cache when this SQL was seen before. */
  private parse(sql: string): ParsedSql {
    let p = this.parsed.get(sql);
    if (p === undefined) {
      if (this.parsed.size >= MAX_PARSED) {
        for (const [key, kept] of this.parsed) if (kept.name === undefined) this.parsed.delete(key);
      }
      p = { ...numberParameters(sql), writes: /^\s*(INSERT|UPDATE|DELETE|WITH)\b/i.test(sql), runs: 0 };
      this.parsed.set(sql, p);
    }
    return p;
  }
}

class PgStatement implements SqlStatement {
  private plucked = false;

  constructor(
    private readonly db: PgDb,
    private readonly sql: ParsedSql,
  ) {}

  pluck(on = true): SqlStatement {
    this.plucked = on;
    return this;
  }

  get(...params: unknown[]): unknown {
    const row = this.exec(params).rows[0];
    return row === undefined ? undefined : this.shape(row);
  }

  all(...params: unknown[]): unknown[] {
    return this.exec(params).rows.map((r) => this.shape(r));
  }

  iterate(...params: unknown[]): IterableIterator<unknown> {
    return this.all(...params)[Symbol.iterator]();
  }

  run(...params: unknown[]): { changes: number } {
    return { changes: this.exec(params).rowCount };
  }

  private shape(row: Record<string, unknown>): unknown {
    if (!this.plucked) return row;
    for (const k in row) return row[k];
    return undefined;
  }

  private exec(params: unknown[]): { rows: Record<string, unknown>[]; rowCount: number } {
    const { text, names, writes } = this.sql;
    let values = params;
    if (names) {
      const bound = (params[0] ?? {}) as Record<string, unknown>;
      values = names.map((n) => {
        if (!(n in bound)) throw new Error(`no value for @${n} in: ${text}`);
        return bound[n];
      });
    }
    if (writes) this.db.wrote();
    return this.db.client.query(text, values.map((v) => (v === undefined ? null : v)), this.db.nameFor(this.sql));
  }
}
