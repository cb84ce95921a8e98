import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './db.js';
import { invalid, notFound } from './errors.js';
import type { ApiToken, Role } from './types.js';
import { iso, isoOrNull } from './util.js';

export const ROLES: Role[] = ['admin', 'operator', 'publisher', 'reader'];

interface TokenRow {
  id: string;
  name: string;
  role: Role;
  secret_sha256: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

const toToken = (r: TokenRow): ApiToken => ({
  id: r.id,
  name: r.name,
  role: r.role,
  createdAt: iso(r.created_at),
  lastUsedAt: isoOrNull(r.last_used_at),
  revokedAt: isoOrNull(r.revoked_at),
});

const USE_RESOLUTION_MS = 60_000;
const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * API tokens look like `lvy_<id>_<secret>`. Only the secret's SHA-256 is stored; the id finds
 * the row and the hashes are compared in constant time, so neither the database nor response
 * timing gives a token away.
 */
export class SqliteTokenStore {
  constructor(private readonly db: Db) {}

  create(name: string, role: Role): { token: string; record: ApiToken } {
    if (!ROLES.includes(role)) throw invalid('role', `must be one of ${ROLES.join(', ')}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}$/.test(name)) throw invalid('name', 'letters, digits, space and ._@:- only, at most 64');
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    this.db
      .prepare('INSERT INTO api_tokens (id, name, role, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, name, role, sha256(secret).toString('hex'), Date.now());
    return { token: `lvy_${id}_${secret}`, record: this.get(id) };
  }

  /** The token's record if it is valid and not revoked; null otherwise. */
  verify(token: string): ApiToken | null {
    const m = /^lvy_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) return null;
    const row = this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(m[1]) as TokenRow | undefined;
    if (!row || row.revoked_at !== null) return null;
    if (!timingSafeEqual(sha256(m[2]!), Buffer.from(row.secret_sha256, 'hex'))) return null;
    return toToken(row);
  }

  /**
   * Records that a token was just used, at most once a minute per token: a write on every
   * authenticated read would cost more than the read, and "last used" needs no finer grain.
   */
  noteUse(token: ApiToken): void {
    const now = Date.now();
    if (token.lastUsedAt !== null && now - Date.parse(token.lastUsedAt) < USE_RESOLUTION_MS) return;
    this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now, token.id);
  }

  list(): ApiToken[] {
    return (this.db.prepare('SELECT * FROM api_tokens ORDER BY created_at').all() as TokenRow[]).map(toToken);
  }

  get(id: string): ApiToken {
    const row = this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow | undefined;
    if (!row) throw notFound(`token ${id}`);
    return toToken(row);
  }

  revoke(id: string): ApiToken {
    this.get(id);
    this.db.prepare('UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?').run(Date.now(), id);
    return this.get(id);
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL').get() as { n: number }).n;
  }
}
