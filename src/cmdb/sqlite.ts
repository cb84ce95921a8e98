import { openDatabase, schemaVersion, type Db } from './db.js';
import { GroupCommit } from './group-commit.js';
import { SqlCmdb } from './sql-cmdb.js';
import { sqliteDb } from './sql.js';
import type { BatchWriter } from './store.js';
import { WalSync } from './wal-sync.js';
import { Writer } from './writer.js';

/**
 * The CMDB on SQLite (better-sqlite3): one file in WAL mode, one connection per process (and
 * one more for the DHCP server's writer thread). `db` is here for tests and maintenance that
 * need SQLite itself, not for the rest of livery.
 */
export class SqliteCmdb extends SqlCmdb {
  private readonly walSync: WalSync;
  private readonly grouped: GroupCommit;

  constructor(
    readonly db: Db,
    migrationBackup: string | null = null,
  ) {
    super(sqliteDb(db), migrationBackup);
    this.walSync = new WalSync(db);
    this.grouped = new GroupCommit((fn, patient) => this.walSync.commit(fn, patient));
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  inTransaction(): boolean {
    return this.db.inTransaction;
  }

  /** See GroupCommit: writes queued in one event-loop turn share a transaction and its fsync. */
  soon<T>(fn: () => T): Promise<T> {
    return this.grouped.run(fn);
  }

  /** A writer thread with its own connection to this database file (see writer.ts). */
  openWriter(): BatchWriter {
    return new Writer({ engine: 'sqlite', path: this.db.name });
  }

  schemaVersion(): number {
    return schemaVersion(this.db);
  }

  integrityCheck(): string {
    return this.db.pragma('integrity_check', { simple: true }) as string;
  }

  close(): void {
    if (this.db.open) this.grouped.flush(true);
    this.walSync.close();
    this.db.close();
  }
}

export function openCmdb(path: string): SqliteCmdb {
  const { db, migrationBackup } = openDatabase(path);
  return new SqliteCmdb(db, migrationBackup);
}
