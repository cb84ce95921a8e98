import { GroupCommit } from '../group-commit.js';
import { SqlCmdb } from '../sql-cmdb.js';
import type { BatchWriter, WriteLock } from '../store.js';
import type { PostgresTarget } from '../target.js';
import { Writer } from '../writer.js';
import { PgDb } from './pg-db.js';
import { PG_MIGRATIONS } from './schema.js';
import { SyncPg } from './sync-pg.js';

/**
 * Every write transaction first takes this advisory lock. Exclusive (the default), it serialises
 * writes across all connections and nodes as SQLite does: the stores' check-then-write steps (a
 * MAC's owner, an address's lease) hold in a transaction on either engine. The DHCP writers'
 * batches take it shared (see WriteLock): they run beside each other, never beside an exclusive write.
 */
export const WRITE_LOCK = 0x6c697679;
/** Another key, for migrations run by nodes starting together. */
const MIGRATE_LOCK = 0x6c697670;

const busy = () => Object.assign(new Error('the CMDB write lock is held by another connection'), { code: 'CMDB_BUSY' });

/**
 * How long a write that must not block its thread for long (soon(): the event loop's) queues for
 * the exclusive lock before it gives up and is retried. A bare try would never find the lock
 * free while nodes' DHCP batches hold it shared back to back; a queued request holds off new
 * shared holders, so it is granted once the batches in progress commit.
 */
const QUEUE_MS = 250;
const LOCK_TIMEOUT = '55P03';

function queueBriefly(client: SyncPg): void {
  try {
    // lock_timeout for this one wait only: set before, reset after, in one round trip.
    client.query("SELECT set_config('lock_timeout', $2, true), pg_advisory_xact_lock($1), set_config('lock_timeout', '0', true)", [WRITE_LOCK, `${QUEUE_MS}ms`]);
  } catch (err) {
    throw (err as { code?: string }).code === LOCK_TIMEOUT ? busy() : err;
  }
}

/**
 * The CMDB on PostgreSQL: the same stores as on SQLite (sql-cmdb.ts), on a pool of connections
 * run by a thread of its own (sync-pg.ts). Commits wait for the WAL flush (synchronous_commit
 * on, PostgreSQL's default), so a committed write is durable when tx() returns.
 */
export class PostgresCmdb extends SqlCmdb {
  private depth = 0;
  private readonly grouped: GroupCommit;

  private constructor(
    private readonly pg: PgDb,
    readonly target: PostgresTarget,
  ) {
    super(pg, null);
    this.grouped = new GroupCommit((fn, patient) => ({ result: this.write(fn, patient), durable: Promise.resolve() }));
  }

  static open(target: PostgresTarget): PostgresCmdb {
    return new PostgresCmdb(new PgDb(openMigrated(target)), target);
  }

  tx<T>(fn: () => T, lock: WriteLock = 'exclusive'): T {
    return this.write(fn, true, lock);
  }

  private write<T>(fn: () => T, patient: boolean, lock: WriteLock = 'exclusive'): T {
    const client = this.pg.client;
    if (this.depth > 0) {
      // A shared transaction cannot give what an exclusive one nested in it expects.
      if (lock === 'exclusive' && this.pg.sideBySide) throw new Error('an exclusive write cannot run inside a shared one');
      // Nested: a savepoint, as better-sqlite3 nests transactions.
      const name = `s${this.depth}`;
      client.query(`SAVEPOINT ${name}`, []);
      this.depth++;
      try {
        const result = fn();
        client.query(`RELEASE SAVEPOINT ${name}`, []);
        return result;
      } catch (err) {
        client.query(`ROLLBACK TO SAVEPOINT ${name}`, []);
        throw err;
      } finally {
        this.depth--;
      }
    }
    client.begin();
    this.depth = 1;
    try {
      const take = lock === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
      if (patient) client.query(`SELECT ${take}($1)`, [WRITE_LOCK]);
      else queueBriefly(client);
      this.pg.sideBySide = lock === 'shared';
      const result = fn();
      client.commit();
      this.pg.wrote();
      return result;
    } catch (err) {
      // A COMMIT that failed (the connection lost) has ended the transaction already; rolling
      // back then would fail too, and hide why.
      if (client.inTransaction()) client.rollback();
      throw err;
    } finally {
      this.depth = 0;
      this.pg.sideBySide = false;
    }
  }

  inTransaction(): boolean {
    return this.depth > 0;
  }

  /** Writes queued in one event-loop turn share a transaction (see GroupCommit). */
  soon<T>(fn: () => T): Promise<T> {
    return this.grouped.run(fn);
  }

  /** A writer thread with its own connections to the same database (see writer.ts). */
  openWriter(): BatchWriter {
    return new Writer(this.target);
  }

  schemaVersion(): number {
    return readVersion(this.pg.client);
  }

  /** PostgreSQL checks its pages itself (checksums, WAL); here: the schema is the one this livery knows. */
  integrityCheck(): string {
    const v = this.schemaVersion();
    return v === PG_MIGRATIONS.length ? 'ok' : `schema version ${v}, expected ${PG_MIGRATIONS.length}`;
  }

  close(): void {
    this.grouped.flush(true);
    this.pg.client.close();
  }
}

/** A client of the database at `target`, its schema brought up to date. */
export function openMigrated(target: PostgresTarget): SyncPg {
  const client = new SyncPg({ url: target.url, password: target.password, channels: ['livery_machines', 'livery_tokens', 'livery_macs'] });
  try {
    migrate(client);
    return client;
  } catch (err) {
    client.close();
    throw err;
  }
}

function readVersion(client: SyncPg): number {
  const row = client.query("SELECT to_regclass('livery_schema') IS NOT NULL AS present", []).rows[0] as { present: boolean };
  if (!row.present) return 0;
  return (client.query('SELECT version FROM livery_schema', []).rows[0] as { version: number } | undefined)?.version ?? 0;
}

/** Brings the schema up to date, one migration per transaction, under a lock so that nodes starting together take turns. */
function migrate(client: SyncPg): void {
  client.begin();
  try {
    client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
    client.query('CREATE TABLE IF NOT EXISTS livery_schema (version BIGINT NOT NULL)', []);
    let current = readVersion(client);
    if (current > PG_MIGRATIONS.length) {
      throw new Error(`database schema version ${current} is newer than this livery (${PG_MIGRATIONS.length}); upgrade livery`);
    }
    if (current === 0) client.query('INSERT INTO livery_schema (version) VALUES (0)', []);
    for (; current < PG_MIGRATIONS.length; current++) {
      client.query(PG_MIGRATIONS[current]!, []);
      client.query('UPDATE livery_schema SET version = $1', [current + 1]);
    }
    client.commit();
  } catch (err) {
    client.rollback();
    throw err;
  }
}
