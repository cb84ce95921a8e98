import Database from 'better-sqlite3';

/**
 * Writes a consistent copy of a CMDB file that a running livery may be writing to. VACUUM INTO
 * reads the whole database inside one read transaction, so DHCP's commits carry on beside it
 * and cannot make it start over, as they can SQLite's page-stepping backup API (which restarts
 * whenever another connection writes the source mid-copy, and so may never finish under load).
 */
export function snapshotDatabase(source: string, target: string): void {
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare('VACUUM INTO ?').run(target);
  } finally {
    db.close();
  }
}

export interface DatabaseReport {
  schemaVersion: number;
  /** SQLite's integrity_check answer: ['ok'] when the file is sound. */
  integrity: string[];
  /** Every blob an image of this database needs. */
  blobs: string[];
}

/** What a (copied or restored) CMDB file holds that a backup must carry and a restore must check. */
export function inspectDatabase(path: string): DatabaseReport {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
    const blobs = (db.prepare('SELECT DISTINCT sha256 FROM image_artifacts ORDER BY sha256').all() as { sha256: string }[]).map((r) => r.sha256);
    return { schemaVersion: db.pragma('user_version', { simple: true }) as number, integrity, blobs };
  } finally {
    db.close();
  }
}
