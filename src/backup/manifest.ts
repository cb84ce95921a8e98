/** The first entry of every backup: what it holds, so a restore can check each byte of it. */
export const MANIFEST_NAME = 'backup.json';
export const DATABASE_NAME = 'livery.db';
export const SECRET_KEY_NAME = 'secret.key';

export interface BackupFile {
  name: string;
  size: number;
  sha256: string;
}

export interface BackupManifest {
  format: 'livery-backup';
  formatVersion: 1;
  createdAt: string;
  liveryVersion: string;
  schemaVersion: number;
  files: BackupFile[];
}

const BLOB_NAME = /^blobs\/sha256\/([0-9a-f]{2})\/\1[0-9a-f]{62}$/;
const SHA256 = /^[0-9a-f]{64}$/;

export const blobEntryName = (sha256: string) => `blobs/sha256/${sha256.slice(0, 2)}/${sha256}`;

/** Names a backup may hold: nothing else is ever written out of one, so no entry can reach outside the data dir. */
export function isBackupEntryName(name: string): boolean {
  return name === DATABASE_NAME || name === SECRET_KEY_NAME || BLOB_NAME.test(name);
}

export class BackupError extends Error {}

/** Checks a manifest read from a backup file; the message names what is wrong. */
export function parseManifest(text: string): BackupManifest {
  let m: BackupManifest;
  try {
    m = JSON.parse(text) as BackupManifest;
  } catch {
    throw new BackupError(`${MANIFEST_NAME} is not JSON`);
  }
  if (m?.format !== 'livery-backup' || m.formatVersion !== 1) throw new BackupError(`${MANIFEST_NAME}: not a livery backup of format 1`);
  if (!Number.isInteger(m.schemaVersion) || !Array.isArray(m.files)) throw new BackupError(`${MANIFEST_NAME}: schemaVersion and files are required`);
  const seen = new Set<string>();
  for (const f of m.files) {
    if (!isBackupEntryName(f?.name)) throw new BackupError(`${MANIFEST_NAME}: unexpected file name ${JSON.stringify(f?.name)}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0 || !SHA256.test(f.sha256)) throw new BackupError(`${MANIFEST_NAME}: ${f.name} needs a size and a sha256`);
    if (seen.has(f.name)) throw new BackupError(`${MANIFEST_NAME}: ${f.name} is listed twice`);
    seen.add(f.name);
  }
  if (!seen.has(DATABASE_NAME)) throw new BackupError(`${MANIFEST_NAME}: the backup has no ${DATABASE_NAME}`);
  return m;
}
