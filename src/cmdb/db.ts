import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

/**
 * Opens (creating if needed) the CMDB file and brings its schema up to date. WAL lets the
 * HTTP workers read while the DHCP server writes; synchronous=FULL makes every committed
 * transaction (an ACKed lease, a published image) survive power loss, not just a crash.
 */
export function openDatabase(path: string): { db: Db; migrationBackup: string | null } {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const migrationBackup = migrate(db, path);
  return { db, migrationBackup };
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the schema up to date. An existing database is first copied to
 * <dir>/backups/livery-schema<N>-<time>.db, so a migration that goes wrong (or a livery
 * downgrade) has the file as it was to go back to; the copy's path is returned.
 */
function migrate(db: Db, path: string): string | null {
  const current = schemaVersion(db);
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this livery (${MIGRATIONS.length}); upgrade livery`);
  }
  if (current === MIGRATIONS.length) return null;
  let backup: string | null = null;
  if (current > 0 && path !== ':memory:') {
    const dir = join(dirname(path), 'backups');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    backup = join(dir, `livery-schema${current}-${new Date().toISOString().replace(/[:.]/g, '-')}.db`);
    db.prepare('VACUUM INTO ?').run(backup);
  }
  // better-sqlite3 opens in SQLite's defensive mode, which forbids editing sqlite_schema; a
  // migration may need that (see 11), so it is lifted while migrations run, and only then.
  db.unsafeMode(true);
  try {
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
      }).immediate();
    }
  } finally {
    db.unsafeMode(false);
  }
  return backup;
}
