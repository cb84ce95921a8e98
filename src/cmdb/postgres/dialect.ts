import type { Dialect, SqlType } from '../sql.js';

const PG_TYPES: Record<SqlType, string> = { int: 'bigint', text: 'text', nocase: 'citext', bool: 'boolean', json: 'text' };

/** PostgreSQL's spelling of the forms sql.ts names: arrays where SQLite reads JSON text, casts where it converts on its own. */
export const POSTGRES: Dialect = {
  name: 'postgres',
  roundTrips: true,
  inList: (expr, type) => `${expr} = ANY(?::${PG_TYPES[type]}[])`,
  list: (values) => [...values],
  listRows: (type) => `(SELECT unnest(?::${PG_TYPES[type]}[]) AS value)`,
  tuples: (param) => `jsonb_array_elements(${param}::jsonb) AS t(value)`,
  tupleAt: (i, type) => (type === 'json' ? `(value->${i})::text` : `(value->>${i})::${PG_TYPES[type]}`),
  jsonField: (column) => `(${column}::jsonb ->> ?::text)`,
  // jsonb compares numbers as numbers and text as text, as SQLite compares json_extract's values.
  fact: (column, op) => `(${column}::jsonb -> ?::text) ${op} ?::jsonb`,
  factValue: (value) => JSON.stringify(value),
  newIds: (table) => `SELECT nextval(pg_get_serial_sequence('${table}', 'id')) FROM generate_series(1, ?::int)`,
  joined: (column, from, orderBy) => `(SELECT string_agg(${column}, ',' ORDER BY ${orderBy}) FROM ${from})`,
};
