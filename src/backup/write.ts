import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Pack } from 'tar-stream';
import { inspectDatabase, snapshotDatabase } from '../cmdb/snapshot.js';
import { databasePath } from '../daemon/paths.js';
import { liveryVersion } from '../version.js';
import { hashing } from './hashing.js';
import { BackupError, blobEntryName, DATABASE_NAME, MANIFEST_NAME, SECRET_KEY_NAME, type BackupFile, type BackupManifest } from './manifest.js';

export interface BackupSummary {
  file: string;
  schemaVersion: number;
  databaseBytes: number;
  blobs: number;
  blobBytes: number;
}

/**
 * Writes one tar holding a consistent copy of the CMDB, every blob its images need and the key
 * that seals BMC passwords, with backup.json (each file's size and sha256) as the last entry.
 * Safe while livery serves: the database is copied in one read transaction and blobs are never
 * changed once written. The tar appears under its name only once it is complete and on disk.
 */
export async function writeBackup(dataDir: string, file: string): Promise<BackupSummary> {
  const source = databasePath(dataDir);
  if (!existsSync(source)) throw new BackupError(`no livery database in ${dataDir} (looked for ${source})`);
  const scratch = await mkdtemp(join(dataDir, '.backup-'));
  const part = `${file}.part`;
  try {
    const copy = join(scratch, DATABASE_NAME);
    snapshotDatabase(source, copy);
    const db = inspectDatabase(copy);
    if (db.integrity.join() !== 'ok') throw new BackupError(`the database copy fails SQLite's integrity check: ${db.integrity.slice(0, 5).join('; ')}`);
    const sources: { name: string; path: string; sha256?: string }[] = [{ name: DATABASE_NAME, path: copy }];
    const key = join(dataDir, SECRET_KEY_NAME);
    if (existsSync(key)) sources.push({ name: SECRET_KEY_NAME, path: key });
    for (const sha256 of db.blobs) sources.push({ name: blobEntryName(sha256), path: join(dataDir, blobEntryName(sha256)), sha256 });

    const pack = tarPack();
    const written = pipeline(Readable.from(pack), createWriteStream(part, { mode: 0o600, flush: true }));
    const files: BackupFile[] = [];
    try {
      for (const s of sources) files.push(await addFile(pack, s));
      const manifest: BackupManifest = { format: 'livery-backup', formatVersion: 1, createdAt: new Date().toISOString(), liveryVersion, schemaVersion: db.schemaVersion, files };
      const text = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
      await new Promise<void>((resolve, reject) => pack.entry({ name: MANIFEST_NAME, size: text.length, mode: 0o600 }, text, (err) => (err ? reject(err) : resolve())));
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
      await written.catch(() => undefined);
      throw err;
    }
    await written;
    await rename(part, file);
    const blobFiles = files.filter((f) => f.name.startsWith('blobs/'));
    return { file, schemaVersion: db.schemaVersion, databaseBytes: files[0]!.size, blobs: blobFiles.length, blobBytes: blobFiles.reduce((n, f) => n + f.size, 0) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await rm(part, { force: true });
  }
}

/** Streams one file into the tar, hashing it on the way; a blob whose bytes do not match its name stops the backup. */
async function addFile(pack: Pack, s: { name: string; path: string; sha256?: string }): Promise<BackupFile> {
  const size = await stat(s.path).then(
    (st) => st.size,
    () => {
      throw new BackupError(`${s.name} is missing from the data dir (removed since the database was copied?): run the backup again`);
    },
  );
  const hashed = hashing();
  await pipeline(createReadStream(s.path), hashed.stream, pack.entry({ name: s.name, size, mode: 0o600 }));
  const { sha256 } = hashed.result();
  if (s.sha256 && s.sha256 !== sha256) throw new BackupError(`${s.name} on disk does not match its sha256 (the blob store is damaged): restore that blob from another copy first`);
  return { name: s.name, size, sha256 };
}
