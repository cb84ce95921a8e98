/**
 * The connection the stores (the *Store classes of src/cmdb) run their SQL on, whichever the
 * engine: better-sqlite3's statement shape, which the PostgreSQL engine reproduces
 * (postgres/pg-db.ts). The stores' SQL is written once, in the subset both engines read the same
 * way (`?` and `@name` parameters, `RETURNING`, `ON CONFLICT`, `->>` on JSON text columns);
 * the few forms that differ come from the connection's Dialect.
 */
export interface SqlStatement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
  /** Rows as their first column's value. */
  pluck(on?: boolean): SqlStatement;
  iterate(...params: unknown[]): IterableIterator<unknown>;
}

export interface SqlDb {
  prepare(sql: string): SqlStatement;
  readonly dialect: Dialect;
  /** A number that moves whenever a change counter's tables change, in any process (see MachineCache). */
  changeCount(counter: ChangeCounter): number;
  /** A number that moves whenever this connection writes; reading it costs no query. */
  ownWrites(): number;
  /**
   * Call just before inserting rows whose ids readers follow by cursor (events): when writers run
   * side by side, makes this transaction's ids commit before any taken after them, so a reader
   * past id n never misses an n - 1 that commits later. Make that insert the transaction's last write.
   */
  orderIds(): void;
}

/**
 * The change counters (triggers keep them): machines and what their boot decisions read, API
 * tokens, and MACs registered (what turns an unknown MAC into a machine).
 */
export type ChangeCounter = 'machines' | 'tokens' | 'macs';

/** The type a bound value is read as. */
export type SqlType = 'int' | 'text' | 'nocase' | 'bool' | 'json';

/** The SQL forms the two engines spell differently. Each returns SQL text with `?` where a value is bound. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /**
   * Each statement is a round trip to a server: many rows in one statement pay off. In process
   * (SQLite), a prepared statement per row costs less than reading the rows out of JSON.
   */
  readonly roundTrips: boolean;
  /** A condition: `expr` is one of a list bound as one parameter, made by list(). */
  inList(expr: string, type: SqlType): string;
  /** A list as the one parameter inList() and listRows() bind. */
  list(values: Iterable<unknown>): unknown;
  /** A list bound as one parameter (list()), as a table of one column, `value`. */
  listRows(type: SqlType): string;
  /** An array of arrays bound as JSON text at `param`, to go after FROM: one row per inner array. */
  tuples(param: string): string;
  /** Field i of a tuples() row, as `type`. */
  tupleAt(i: number, type: SqlType): string;
  /** The text at object key `?` of the JSON text in `column`. */
  jsonField(column: string): string;
  /** A condition: JSON `column`'s value at object key `?` compares by `op` with a value bound by factValue(). */
  fact(column: string, op: string): string;
  factValue(value: string | number): unknown;
  /** A query for `?` fresh ids of `table` (its `id` column), taken in a write transaction. */
  newIds(table: string): string;
  /** A subquery: `column` of the rows of `from` (a table and its WHERE), joined with ',' in `orderBy`'s order. */
  joined(column: string, from: string, orderBy: string): string;
}

export const SQLITE: Dialect = {
  name: 'sqlite',
  roundTrips: false,
  inList: (expr) => `${expr} IN (SELECT value FROM json_each(?))`,
  list: (values) => JSON.stringify([...values]),
  listRows: () => '(SELECT value FROM json_each(?))',
  // jsonb_each hands each row over parsed, so reading its fields does not re-parse the row's text per field.
  tuples: (param) => `jsonb_each(${param})`,
  tupleAt: (i, type) => (type === 'json' ? `json(value->${i})` : `value->>${i}`),
  jsonField: (column) => `(${column} ->> ?)`,
  fact: (column, op) => `(${column} ->> ?) ${op} ?`,
  factValue: (value) => value,
  // Writers are serialised, so the ids after the largest are free until this transaction ends.
  newIds: (table) => `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT (SELECT coalesce(max(id), 0) FROM ${table}) + i FROM n`,
  joined: (column, from, orderBy) => `(SELECT group_concat(${column}, ',') FROM (SELECT ${column} FROM ${from} ORDER BY ${orderBy}))`,
};

/** A better-sqlite3 connection as the stores use it: its statements already have SqlStatement's shape. */
export function sqliteDb(db: { prepare(sql: string): SqlStatement }): SqlDb {
  const counter = db.prepare('SELECT n FROM change_counters WHERE name = ?').pluck();
  // Reads no table, so it starts no read transaction: a fraction of a microsecond.
  const totalChanges = db.prepare('SELECT total_changes()').pluck();
  return {
    prepare: (sql) => db.prepare(sql),
    dialect: SQLITE,
    changeCount: (name) => counter.get(name) as number,
    ownWrites: () => totalChanges.get() as number,
    // One writer at a time: ids commit in order already.
    orderIds: () => {},
  };
}
