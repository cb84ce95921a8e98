import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The key file for BMC secrets inside a data dir. */
export const secretKeyPath = (dataDir: string) => join(dataDir, 'secret.key');

const KEY_BYTES = 32;
const IV_BYTES = 12;
const FORMAT = 'v1';

export class SecretKeyError extends Error {
  override name = 'SecretKeyError';
}

/**
 * Creates the key file (32 random bytes, mode 0600) unless it exists. O_EXCL: two processes
 * starting at once cannot both write one. Returns whether this call created it.
 */
export function ensureSecretKey(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new SecretKeyError(`cannot create the secret key file ${path}: ${(err as Error).message}`);
  }
  try {
    writeSync(fd, randomBytes(KEY_BYTES));
  } finally {
    closeSync(fd);
  }
  return true;
}

/** The id a ciphertext carries: the first 8 hex digits of the key's sha256 (reveals nothing usable). */
const keyIdOf = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 8);

/** The key id a stored ciphertext was sealed with (null if it is not one of ours). */
export function keyIdOfSealed(sealed: string): string | null {
  const parts = sealed.split(':');
  return parts.length === 5 && parts[0] === FORMAT ? parts[1]! : null;
}

/**
 * AES-256-GCM for secrets at rest (BMC passwords). A sealed value is
 * `v1:<key id>:<iv>:<tag>:<ciphertext>` (base64 parts): the key id tells a wrong key from a
 * damaged value, so a lost or replaced key file is reported as such, never decrypted to garbage
 * (GCM's tag would refuse that anyway). The key is read from its file at each use, so every
 * process (HTTP workers too) sees the same file and a missing one is named when it matters.
 */
export class SecretBox {
  constructor(readonly keyPath: string) {}

  seal(plain: string): string {
    const key = this.key();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [FORMAT, keyIdOf(key), iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
  }

  open(sealed: string): string {
    const id = keyIdOfSealed(sealed);
    if (id === null) throw new SecretKeyError('stored secret is not in a format this livery reads');
    const key = this.key();
    const have = keyIdOf(key);
    if (id !== have) {
      throw new SecretKeyError(`stored secret was encrypted with key ${id}, but the key file ${this.keyPath} holds key ${have}: restore the original key file or set the secret again`);
    }
    const [, , iv, tag, ct] = sealed.split(':') as [string, string, string, string, string];
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretKeyError(`stored secret (key ${id}) is damaged: it does not authenticate; set it again`);
    }
  }

  /** The key id of the key file as it is now. */
  keyId(): string {
    return keyIdOf(this.key());
  }

  private key(): Buffer {
    let key: Buffer;
    try {
      key = readFileSync(this.keyPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SecretKeyError(
        code === 'ENOENT'
          ? `secret key file ${this.keyPath} is missing (livery creates it at first start; if it was lost, secrets stored with it cannot be read: set them again)`
          : `secret key file ${this.keyPath} cannot be read: ${(err as Error).message}`,
      );
    }
    if (key.length !== KEY_BYTES) throw new SecretKeyError(`secret key file ${this.keyPath} holds ${key.length} bytes, not ${KEY_BYTES}: it is not a livery key`);
    return key;
  }
}
