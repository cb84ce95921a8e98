import { PgError } from './sync-pg.js';

/**
 * Whether `err` says the database could not be reached or stopped answering, rather than that
 * a statement was wrong: a socket's error (ECONNREFUSED, EPIPE) or the call's bound (no
 * SQLSTATE), a connection exception (class 08) or a server shutting down or starting (57P0x).
 */
export function cmdbUnavailable(err: unknown): err is PgError {
  if (!(err instanceof PgError)) return false;
  const code = err.code ?? '';
  // No SQLSTATE class begins with E, and a socket's EPIPE has a SQLSTATE's shape.
  return !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('E') || code.startsWith('08') || code.startsWith('57P');
}
