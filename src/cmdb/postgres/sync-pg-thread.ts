/**
 * The thread of a SyncPg (see sync-pg.ts): owns the pg pool and the LISTEN connection, runs
 * each request as it comes and posts the answer, then bumps the shared answer counter and
 * wakes the caller blocked in Atomics.wait.
 */
import type { MessagePort } from 'node:worker_threads';
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import type { PgErrorFields, SyncPgAnswer, SyncPgRequest, SyncPgThreadData } from './sync-pg.js';

const INT8_OID = 20;
const BYTEA_OID = 17;
/** The client-side bound beyond statement_timeout: a stalled server never sends the timeout error itself. */
const READ_GRACE_MS = 1_000;
const LISTEN_RETRY_MIN_MS = 100;
const LISTEN_RETRY_MAX_MS = 2_000;

const data = workerData as SyncPgThreadData;
const shared = new Int32Array(data.shared);
/** The password as the URL holds it and as sent: kept out of every error message. */
const secrets = passwordForms(new URL(data.connectionString).password);

// ids and millisecond timestamps are int8, and sum() over them numeric: numbers to the caller, as SQLite gives them.
const NUMERIC_OID = 1700;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (oid === INT8_OID || oid === NUMERIC_OID) && format !== 'binary' ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};
const clientConfig: pg.ClientConfig = {
  connectionString: data.connectionString,
  connectionTimeoutMillis: data.connectTimeoutMs,
  statement_timeout: data.queryTimeoutMs,
  query_timeout: data.queryTimeoutMs + READ_GRACE_MS,
  application_name: 'livery',
  keepAlive: true,
  types,
};
// Idle connections stay open: each keeps the prepared statements it has parsed.
const pool = new pg.Pool({ ...clientConfig, max: data.poolSize, idleTimeoutMillis: 0 });
// A connection that drops while idle is removed by the pool; the next call opens another.
pool.on('error', () => {});
// One that drops while checked out (a transaction's, between statements) would throw its error
// event at this thread; its next query fails instead, and the connection is dropped then.
pool.on('connect', (client) => client.on('error', () => {}));

let answers: MessagePort;
/** The connection of the caller's open transaction, and that transaction's number. */
let pinned: { tx: number; client: pg.PoolClient } | null = null;
/** The transaction of the latest request in (null: outside one): what the caller is in now. */
let current: number | null = null;
let listener: pg.Client | null = null;
let closing = false;

parentPort!.on('message', (request: SyncPgRequest) => {
  if (request.op === 'open') answers = request.answers;
  if ('tx' in request) current = request.tx;
  handle(request).then(
    (answer) => post({ id: request.id, ...answer }),
    (err: unknown) => post({ id: request.id, error: errorFields(err) }),
  );
});

function post(answer: SyncPgAnswer): void {
  answers.postMessage(answer);
  Atomics.add(shared, 0, 1);
  Atomics.notify(shared, 0);
}

async function handle(request: SyncPgRequest): Promise<Omit<SyncPgAnswer, 'id'>> {
  switch (request.op) {
    case 'open':
      (await connect()).release();
      if (data.channels.length > 0) await listen();
      return {};
    case 'query': {
      const config = { text: request.sql, values: request.params, name: request.name };
      const inTx = pinnedFor(request.tx);
      const result = inTx ? await inTx.query(config).catch((err) => Promise.reject(unreachable(err))) : await onPooled((client) => client.query(config));
      // Several statements in one text (no parameters) give one result each: the last one answers.
      const last = (Array.isArray(result) ? result.at(-1) : result) as pg.QueryResult;
      const byteaColumns = last.fields.filter((f) => f.dataTypeID === BYTEA_OID).map((f) => f.name);
      return { rows: last.rows, rowCount: last.rowCount ?? 0, byteaColumns: byteaColumns.length > 0 ? byteaColumns : undefined };
    }
    case 'begin': {
      if (pinnedFor(request.tx)) throw new Error('a transaction is already open on this SyncPg (no nesting)');
      const client = await connect();
      try {
        await client.query('BEGIN');
      } catch (err) {
        client.release(brokenConnection(err) ? (err as Error) : undefined);
        throw unreachable(err);
      }
      if (current !== request.tx) {
        // The caller stopped waiting for this begin and has moved on: nothing may join it.
        client.release(true);
        throw new Error('begin: given up by the caller');
      }
      pinned = { tx: request.tx, client };
      return {};
    }
    case 'commit':
    case 'rollback': {
      const client = pinnedFor(request.tx);
      pinned = null;
      if (!client) throw new Error(`${request.op}: no transaction is open on this SyncPg`);
      try {
        await client.query(request.op === 'commit' ? 'COMMIT' : 'ROLLBACK');
        client.release();
      } catch (err) {
        client.release(brokenConnection(err) ? (err as Error) : undefined);
        // A connection lost mid-transaction has rolled it back on the server: what rollback asked.
        if (!(request.op === 'rollback' && brokenConnection(err))) throw err;
      }
      return {};
    }
    case 'close':
      closing = true;
      pinned?.client.release(true);
      await Promise.allSettled([pool.end(), listener?.end()]);
      return {};
  }
}

/**
 * The connection of transaction `tx`, if it is the one open. Any other open transaction was
 * given up by the caller: closing its connection rolls it back.
 */
function pinnedFor(tx: number | null): pg.PoolClient | null {
  if (pinned && pinned.tx !== tx) {
    pinned.client.release(true);
    pinned = null;
  }
  return pinned?.client ?? null;
}

/** A pooled connection, or an error naming the server. */
async function connect(): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (err) {
    throw unreachable(err);
  }
}

/** Runs fn on a pooled connection; a connection that broke under it is dropped rather than reused. */
async function onPooled<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await connect();
  try {
    const result = await fn(client);
    client.release();
    return result;
  } catch (err) {
    client.release(brokenConnection(err) ? (err as Error) : undefined);
    throw unreachable(err);
  }
}

/** Not an error the server reported about a statement (the connection failed, timed out or closed). */
function brokenConnection(err: unknown): boolean {
  return !(err instanceof pg.DatabaseError);
}

/** The error, named after the server when it is about reaching it (pg's own message says only what failed). */
function unreachable(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (!(e instanceof pg.DatabaseError)) e.message = `PostgreSQL at ${data.where}: ${e.message}`;
  return e;
}

/**
 * One connection LISTENing on the channels; each NOTIFY bumps its channel's counter. When
 * that connection is lost it is opened again, and every counter is bumped once: NOTIFYs sent
 * meanwhile were not seen, so whoever watches a counter must look again.
 */
async function listen(): Promise<void> {
  const client = new pg.Client(clientConfig);
  client.on('notification', (n) => {
    const i = data.channels.indexOf(n.channel);
    if (i >= 0) Atomics.add(shared, 1 + i, 1);
  });
  client.on('error', () => {});
  try {
    await client.connect();
    for (const channel of data.channels) await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
  } catch (err) {
    await client.end().catch(() => {});
    throw unreachable(err);
  }
  listener = client;
  client.once('end', () => {
    if (!closing) void listenAgain();
  });
}

async function listenAgain(): Promise<void> {
  for (let pause = LISTEN_RETRY_MIN_MS; !closing; pause = Math.min(pause * 2, LISTEN_RETRY_MAX_MS)) {
    await new Promise((r) => setTimeout(r, pause));
    try {
      await listen();
      for (let i = 0; i < data.channels.length; i++) Atomics.add(shared, 1 + i, 1);
      return;
    } catch {
      // Still unreachable: try again after a longer pause.
    }
  }
}

function errorFields(err: unknown): PgErrorFields {
  const e = (err instanceof Error ? err : new Error(String(err))) as Error & Partial<PgErrorFields>;
  // pg's messages do not carry the password; this keeps it so whatever a future message holds.
  const scrub = (s: string | undefined) => secrets.reduce((text, secret) => text?.replaceAll(secret, '***'), s);
  const fields: PgErrorFields = { message: scrub(e.message)! };
  for (const key of ['code', 'constraint', 'detail', 'table', 'column', 'schema', 'hint'] as const) {
    if (e[key] !== undefined) fields[key] = scrub(e[key]);
  }
  return fields;
}

function passwordForms(encoded: string): string[] {
  if (!encoded) return [];
  try {
    return [encoded, decodeURIComponent(encoded)];
  } catch {
    return [encoded]; // not valid percent-encoding: pg sends it as it is
  }
}
