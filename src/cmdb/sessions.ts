import { createHash, randomBytes } from 'node:crypto';
import type { SqlDb } from './sql.js';
import type { ApiToken, Role } from './types.js';
import { iso, isoOrNull } from './util.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export interface ConsoleSession {
  /** The token the operator logged in with: the session has exactly its name and role. */
  token: ApiToken;
  expiresAt: string;
}

/**
 * The web console's login sessions. A session id is 32 random bytes given to the browser once
 * (as a cookie); only its SHA-256 is stored, so the database does not give sessions away. A
 * session lives in the CMDB (it survives a restart) until it expires, is logged out, or its
 * token is revoked.
 */
export class SqlSessionStore {
  constructor(private readonly db: SqlDb) {}

  /** A new session for a verified token; returns the session id the browser keeps. */
  create(tokenId: string, ttlMs: number, now = Date.now()): string {
    const id = randomBytes(32).toString('base64url');
    this.db.prepare('DELETE FROM console_sessions WHERE expires_at <= ?').run(now);
    this.db.prepare('INSERT INTO console_sessions (id_sha256, token_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(sha256(id), tokenId, now, now + ttlMs);
    return id;
  }

  /** The live session for this id, or null (unknown, expired, or its token revoked). */
  verify(id: string, now = Date.now()): ConsoleSession | null {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    const row = this.db
      .prepare(
        `SELECT t.id, t.name, t.role, t.created_at, t.last_used_at, t.revoked_at, s.expires_at
         FROM console_sessions s JOIN api_tokens t ON t.id = s.token_id
         WHERE s.id_sha256 = ? AND s.expires_at > ? AND t.revoked_at IS NULL`,
      )
      .get(sha256(id), now) as
      | { id: string; name: string; role: Role; created_at: number; last_used_at: number | null; revoked_at: number | null; expires_at: number }
      | undefined;
    if (!row) return null;
    return {
      token: { id: row.id, name: row.name, role: row.role, createdAt: iso(row.created_at), lastUsedAt: isoOrNull(row.last_used_at), revokedAt: null },
      expiresAt: iso(row.expires_at),
    };
  }

  end(id: string): void {
    this.db.prepare('DELETE FROM console_sessions WHERE id_sha256 = ?').run(sha256(id));
  }
}
