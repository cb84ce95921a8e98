import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { startThread } from '../../thread.js';

const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './sync-pg-thread.ts' : './sync-pg-thread.js', import.meta.url);

export interface SyncPgOptions {
  /** postgres://user@host:port/db (a socket: ?host=/dir); a password given apart wins over one in the URL. */
  url: string;
  password?: string;
  /** Connections in the pool (default 4). */
  poolSize?: number;
  /** statement_timeout of every connection (default 10 s). */
  queryTimeoutMs?: number;
  /** Bound on opening a connection, or waiting for a free one (default 5 s). */
  connectTimeoutMs?: number;
  /** Channels to LISTEN on, whose NOTIFYs notified() counts. */
  channels?: string[];
}

/** What crosses to the thread: the options (password included), and the shared counters. */
export interface SyncPgThreadData {
  connectionString: string;
  where: string;
  poolSize: number;
  queryTimeoutMs: number;
  connectTimeoutMs: number;
  channels: string[];
  /** Int32Array over it: [answers posted, then one NOTIFY counter per channel]. */
  shared: SharedArrayBuffer;
}

/**
 * `tx` numbers the caller's open transaction (null outside one). The thread runs a request in
 * the transaction of that number only: a transaction the caller gave up on (its begin() timed
 * out, then went through on the thread) is rolled back at the next request, never joined.
 */
export type SyncPgRequest =
  | { id: number; op: 'open'; answers: MessagePort }
  | { id: number; op: 'query'; tx: number | null; sql: string; params: unknown[]; name?: string }
  | { id: number; op: 'begin' | 'commit' | 'rollback'; tx: number }
  | { id: number; op: 'close' };

/** A request before call() numbers it (Omit taken over each member of the union). */
type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never;

export interface SyncPgAnswer {
  id: number;
  rows?: Record<string, unknown>[];
  rowCount?: number;
  /** Columns of type bytea: their values arrive as Uint8Array and are given back as Buffers. */
  byteaColumns?: string[];
  error?: PgErrorFields;
}

export interface SyncPgResult<Row> {
  rows: Row[];
  rowCount: number;
}

/**
 * An error from PostgreSQL or from reaching it, on the caller's thread. `code` is the SQLSTATE
 * when the server reported it (23505: unique violation), the socket's (ECONNREFUSED) when it
 * could not be reached, LIVERY_PG_TIMEOUT when the thread did not answer within the call's bound.
 */
export class PgError extends Error {
  code?: string;
  constraint?: string;
  detail?: string;
  table?: string;
  column?: string;
  schema?: string;
  hint?: string;
  constructor(fields: PgErrorFields) {
    super(fields.message);
    this.name = 'PgError';
    Object.assign(this, fields);
  }
}

/** What crosses from the thread to make a PgError: the fields callers decide on (pg's DatabaseError, minus the protocol details). */
export type PgErrorFields = Pick<PgError, 'message' | 'code' | 'constraint' | 'detail' | 'table' | 'column' | 'schema' | 'hint'>;

const DEFAULT_POOL_SIZE = 4;
const DEFAULT_QUERY_TIMEOUT_MS = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Beyond the thread's own bounds (which answer with pg's error first), before the caller stops waiting. */
const WAIT_SLACK_MS = 3_000;
/** Starting the thread (loading pg; from source, through tsx) on a busy machine. */
const THREAD_START_MS = 20_000;

/**
 * A synchronous PostgreSQL client, for the CMDB's synchronous interface (store.ts): a thread of
 * its own owns a `pg` pool and runs each statement; the calling thread blocks in Atomics.wait
 * until the thread's answer is posted, then takes it with receiveMessageOnPort (the technique
 * of npm synckit). Every wait is bounded, so no call blocks forever on a database that is down
 * or stalled. One caller at a time, as with a SQLite connection: begin() pins one pooled
 * connection that every call until commit()/rollback() uses.
 */
export class SyncPg {
  private readonly worker: Worker;
  private readonly answers: MessagePort;
  private readonly shared: Int32Array;
  private readonly channels: string[];
  private readonly where: string;
  private readonly callBoundMs: number;
  private nextId = 1;
  /** The open transaction's number, or null. */
  private tx: number | null = null;
  private nextTx = 1;
  private closed = false;
  /** Why the thread ended, if it did before close(): every call then fails at once. */
  private threadEnded: string | null = null;

  constructor(opts: SyncPgOptions) {
    const url = parseUrl(opts.url);
    if (opts.password !== undefined) url.password = encodeURIComponent(opts.password);
    this.where = `${url.searchParams.get('host') ?? url.hostname}:${url.searchParams.get('port') ?? (url.port || '5432')}`;
    this.channels = [...(opts.channels ?? [])];
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const queryTimeoutMs = opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    this.callBoundMs = connectTimeoutMs + queryTimeoutMs + WAIT_SLACK_MS;
    const shared = new SharedArrayBuffer(4 * (1 + this.channels.length));
    this.shared = new Int32Array(shared);
    const data: SyncPgThreadData = {
      connectionString: url.toString(),
      where: this.where,
      poolSize: opts.poolSize ?? DEFAULT_POOL_SIZE,
      queryTimeoutMs,
      connectTimeoutMs,
      channels: this.channels,
      shared,
    };
    this.worker = startThread(ENTRY, data);
    this.worker.on('error', (err) => (this.threadEnded ??= err.message));
    this.worker.on('exit', (code) => (this.threadEnded ??= `exit code ${code}`));
    const { port1, port2 } = new MessageChannel();
    this.answers = port1;
    // Opening checks that the database answers and, with channels, that LISTEN is in place.
    const seen = Atomics.load(this.shared, 0);
    this.worker.postMessage({ id: 0, op: 'open', answers: port2 } satisfies SyncPgRequest, [port2]);
    try {
      this.answer(0, seen, THREAD_START_MS + connectTimeoutMs, 'its thread did not start, or PostgreSQL did not answer,');
    } catch (err) {
      this.shut();
      throw err;
    }
  }

  /** Runs one statement; with `name`, as a prepared statement its connection keeps for the next call by that name. */
  query<Row = Record<string, unknown>>(sql: string, params: unknown[] = [], name?: string): SyncPgResult<Row> {
    const answer = this.call({ op: 'query', tx: this.tx, sql, params, name });
    const rows = answer.rows as Row[];
    for (const column of answer.byteaColumns ?? []) {
      for (const row of rows as Record<string, unknown>[]) {
        const v = row[column];
        if (v instanceof Uint8Array) row[column] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
    }
    return { rows, rowCount: answer.rowCount ?? 0 };
  }

  begin(): void {
    if (this.tx !== null) throw new Error('a transaction is already open on this SyncPg (no nesting)');
    const tx = this.nextTx++;
    this.call({ op: 'begin', tx });
    this.tx = tx;
  }

  commit(): void {
    this.end('commit');
  }

  /** Rolls back; a connection lost meanwhile rolled the transaction back already, which is not an error. */
  rollback(): void {
    this.end('rollback');
  }

  inTransaction(): boolean {
    return this.tx !== null;
  }

  /** How many NOTIFYs came on `channel`, plus one at every reconnect of the listener (some may have been missed). No round trip. */
  notified(channel: string): number {
    const i = this.channels.indexOf(channel);
    if (i < 0) throw new Error(`not listening on channel '${channel}': the channels given were ${this.channels.join(', ') || '(none)'}`);
    return Atomics.load(this.shared, 1 + i);
  }

  /** Ends the pool and the listener, then the thread. */
  close(): void {
    if (this.closed) return;
    try {
      this.call({ op: 'close' });
    } catch {
      // The thread is terminated below either way; its connections close with it.
    } finally {
      this.shut();
    }
  }

  private end(op: 'commit' | 'rollback'): void {
    const tx = this.tx;
    if (tx === null) throw new Error(`${op}: no transaction is open on this SyncPg`);
    this.tx = null;
    this.call({ op, tx });
  }

  private shut(): void {
    this.closed = true;
    this.answers.close();
    void this.worker.terminate();
  }

  private call(request: Unnumbered<SyncPgRequest>): SyncPgAnswer {
    if (this.closed) throw new Error('SyncPg is closed');
    if (this.threadEnded) throw new Error(`SyncPg's thread has ended (${this.threadEnded}): open a new SyncPg`);
    const id = this.nextId++;
    const seen = Atomics.load(this.shared, 0);
    this.worker.postMessage({ ...request, id });
    return this.answer(id, seen, this.callBoundMs);
  }

  /** Blocks until the answer `id` is posted (answers of calls that gave up earlier are dropped), at most boundMs. */
  private answer(id: number, seen: number, boundMs: number, silence = 'no answer'): SyncPgAnswer {
    const deadline = performance.now() + boundMs;
    for (;;) {
      for (let m = receiveMessageOnPort(this.answers); m; m = receiveMessageOnPort(this.answers)) {
        const answer = m.message as SyncPgAnswer;
        if (answer.id !== id) continue;
        if (answer.error) throw new PgError(answer.error);
        return answer;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new PgError({ message: `PostgreSQL at ${this.where}: ${silence} within ${boundMs} ms`, code: 'LIVERY_PG_TIMEOUT' });
      Atomics.wait(this.shared, 0, seen, left);
      seen = Atomics.load(this.shared, 0);
    }
  }
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The text itself stays out of the message: it may hold a password.
    throw new Error('database url: not a URL (expected postgres://user@host:port/database)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`database url: scheme '${url.protocol.slice(0, -1)}' is not postgres or postgresql`);
  }
  return url;
}
