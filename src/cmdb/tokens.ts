import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SqlDb } from './sql.js';
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
/**
 * How stale this process's copy of the tokens may be: a token revoked by another process (the
 * CLI, another HTTP worker) is refused here at most this long after its revocation commits.
 * The token counter (migration 13) is read at most this often, not per request.
 */
export const TOKEN_CHECK_INTERVAL_MS = 100;
const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** A token as verify() keeps it: its record and the stored hash, never the secret. */
interface KnownToken {
  record: ApiToken;
  secretSha256: Buffer;
  revoked: boolean;
}

/**
 * API tokens look like `lvy_<id>_<secret>`. Only the secret's SHA-256 is stored; the id finds
 * the row and the hashes are compared in constant time, so neither the database nor response
 * timing gives a token away. Every authenticated request verifies one, so rows read are kept
 * by id (hash and record only) until the token counter moves (see TOKEN_CHECK_INTERVAL_MS);
 * this process's own revocations drop them at once.
 */
export class SqlTokenStore {
  private readonly byId;
  private readonly touch;
  private readonly known = new Map<string, KnownToken>();
  private version = -1;
  private checkedAt = -Infinity;

  constructor(private readonly db: SqlDb) {
    this.byId = db.prepare('SELECT * FROM api_tokens WHERE id = ?');
    this.touch = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');
  }

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
    const known = this.lookup(m[1]!);
    if (!known || known.revoked) return null;
    if (!timingSafeEqual(sha256(m[2]!), known.secretSha256)) return null;
    return known.record;
  }

  /** The token with this id as of at most TOKEN_CHECK_INTERVAL_MS ago; ids nobody holds are not kept. */
  private lookup(id: string): KnownToken | null {
    const now = performance.now();
    if (now - this.checkedAt >= TOKEN_CHECK_INTERVAL_MS) {
      const version = this.db.changeCount('tokens');
      if (version !== this.version) this.known.clear();
      this.version = version;
      this.checkedAt = now;
    }
    const cached = this.known.get(id);
    if (cached) return cached;
    const row = this.byId.get(id) as TokenRow | undefined;
    if (!row) return null;
    const known = { record: toToken(row), secretSha256: Buffer.from(row.secret_sha256, 'hex'), revoked: row.revoked_at !== null };
    this.known.set(id, known);
    return known;
  }

  /**
   * Records that a token was just used, at most once a minute per token: a write on every
   * authenticated read would cost more than the read, and "last used" needs no finer grain.
   */
  noteUse(token: ApiToken): void {
    const now = Date.now();
    if (token.lastUsedAt !== null && now - Date.parse(token.lastUsedAt) < USE_RESOLUTION_MS) return;
    this.touch.run(now, token.id);
    // The kept record answers the next requests: it must know of this use, or each would write again.
    const known = this.known.get(token.id);
    if (known) known.record = { ...known.record, lastUsedAt: iso(now) };
  }

  list(): ApiToken[] {
    return (this.db.prepare('SELECT * FROM api_tokens ORDER BY created_at').all() as TokenRow[]).map(toToken);
  }

  get(id: string): ApiToken {
    const row = this.byId.get(id) as TokenRow | undefined;
    if (!row) throw notFound(`token ${id}`);
    return toToken(row);
  }

  revoke(id: string): ApiToken {
    this.get(id);
    this.db.prepare('UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?').run(Date.now(), id);
    this.known.delete(id);
    return this.get(id);
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL').get() as { n: number }).n;
  }
}
