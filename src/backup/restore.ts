import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract } from 'tar-stream';
import { MIGRATIONS } from '../cmdb/migrations.js';
import { inspectDatabase } from '../cmdb/snapshot.js';
import { hashing } from './hashing.js';
import { BackupError, blobEntryName, DATABASE_NAME, isBackupEntryName, MANIFEST_NAME, parseManifest, SECRET_KEY_NAME, type BackupFile } from './manifest.js';

export interface RestoreSummary {
  dataDir: string;
  schemaVersion: number;
  files: number;
  bytes: number;
}

/**
 * Restores a backup into an empty (or new) data dir. Every entry is written under a scratch
 * directory first and checked against backup.json (size, sha256), the database against
 * SQLite's integrity check and the blobs its images need; only a backup that passes all of it
 * is moved into place, the database last, so a cut-off restore never leaves a database whose
 * blobs are missing.
 */
export async function restoreBackup(file: string, dataDir: string): Promise<RestoreSummary> {
  if (!existsSync(file)) throw new BackupError(`no backup file ${file}`);
  mkdirSync(dataDir, { recursive: true });
  const present = readdirSync(dataDir).filter((n) => !n.startsWith('.restore-'));
  if (present.length > 0) throw new BackupError(`${dataDir} is not empty (${present.slice(0, 5).join(', ')}): restore into an empty data dir`);
  for (const stale of readdirSync(dataDir)) await rm(join(dataDir, stale), { recursive: true, force: true });
  const scratch = await mkdtemp(join(dataDir, '.restore-'));
  try {
    const { manifestText, got } = await unpack(file, scratch);
    if (manifestText === null) throw new BackupError(`${file} has no ${MANIFEST_NAME}: not a livery backup, or cut off`);
    const manifest = parseManifest(manifestText);
    for (const want of manifest.files) {
      const have = got.get(want.name);
      if (!have) throw new BackupError(`${want.name} is listed in ${MANIFEST_NAME} but not in the backup`);
      if (have.size !== want.size || have.sha256 !== want.sha256) throw new BackupError(`${want.name} does not match its sha256 in ${MANIFEST_NAME}: the backup is damaged`);
    }
    for (const name of got.keys()) if (!manifest.files.some((f) => f.name === name)) throw new BackupError(`${name} is in the backup but not in ${MANIFEST_NAME}`);
    const db = inspectDatabase(join(scratch, DATABASE_NAME));
    if (db.integrity.join() !== 'ok') throw new BackupError(`the backed-up database fails SQLite's integrity check: ${db.integrity.slice(0, 5).join('; ')}`);
    if (db.schemaVersion > MIGRATIONS.length) throw new BackupError(`the backup's schema (${db.schemaVersion}) is newer than this livery's (${MIGRATIONS.length}): restore it with a newer livery`);
    const missing = db.blobs.filter((sha) => !got.has(blobEntryName(sha)));
    if (missing.length > 0) throw new BackupError(`the backup lacks ${missing.length} blob(s) its images need, e.g. ${missing[0]}`);

    if (existsSync(join(scratch, 'blobs'))) await rename(join(scratch, 'blobs'), join(dataDir, 'blobs'));
    if (got.has(SECRET_KEY_NAME)) await rename(join(scratch, SECRET_KEY_NAME), join(dataDir, SECRET_KEY_NAME));
    await rename(join(scratch, DATABASE_NAME), join(dataDir, DATABASE_NAME));
    return { dataDir, schemaVersion: db.schemaVersion, files: got.size, bytes: [...got.values()].reduce((n, f) => n + f.size, 0) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Writes every entry under `scratch`, hashing it; entries with names a backup never holds stop the restore. */
async function unpack(file: string, scratch: string): Promise<{ manifestText: string | null; got: Map<string, BackupFile> }> {
  const got = new Map<string, BackupFile>();
  let manifestText: string | null = null;
  const extract = tarExtract();
  const feeding = pipeline(createReadStream(file), extract);
  try {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      if (type !== 'file') throw new BackupError(`unexpected ${type} entry ${JSON.stringify(name)} in the backup`);
      if (name === MANIFEST_NAME) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        manifestText = Buffer.concat(chunks).toString('utf8');
        continue;
      }
      if (!isBackupEntryName(name)) throw new BackupError(`unexpected entry ${JSON.stringify(name)} in the backup`);
      if (got.has(name)) throw new BackupError(`${name} appears twice in the backup`);
      const target = join(scratch, name);
      mkdirSync(dirname(target), { recursive: true });
      const hashed = hashing();
      await pipeline(entry, hashed.stream, createWriteStream(target, { mode: 0o600, flush: true }));
      got.set(name, { name, ...hashed.result() });
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    await feeding.catch(() => undefined);
    throw err instanceof BackupError ? err : new BackupError(`${file} cannot be read as a backup: ${(err as Error).message}`);
  }
  return { manifestText, got };
}
