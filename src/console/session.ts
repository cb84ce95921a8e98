import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Cmdb } from '../cmdb/index.js';
import type { Role } from '../cmdb/types.js';
import { grants, HttpError } from '../http/auth.js';

export const SESSION_COOKIE = 'livery_session';

export interface ConsoleUser {
  name: string;
  role: Role;
  /** The synchronizer token every state-changing request of this session must carry. */
  csrf: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    consoleUser: ConsoleUser | null;
  }
}

/** One cookie's value from the Cookie header, or null. */
export function cookieOf(req: FastifyRequest, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/**
 * The session's CSRF token is derived from its secret id, so it is bound to that session and
 * nothing more is stored; a page embeds it, and a page on another origin cannot read it.
 */
export const csrfOf = (sessionId: string): string => createHash('sha256').update(`livery-console-csrf:${sessionId}`).digest('base64url');

export function sessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

export const clearedCookie = (secure: boolean): string => `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * The console's guard: a live session cookie whose token carries `role`, and on every
 * state-changing request the session's CSRF token (header x-csrf-token, as htmx sends it, or
 * the form field _csrf). The request's token becomes the session's, so writes are audited under
 * the token's name as through the API. Without a session a page sends the browser to the login.
 */
export function requireSession(cmdb: Cmdb, role: Role) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const id = cookieOf(req, SESSION_COOKIE);
    const session = id ? cmdb.sessions.verify(id) : null;
    if (!session || !id) {
      if (SAFE_METHODS.has(req.method) && req.headers['hx-request'] === undefined && !req.url.startsWith('/ui/stream')) {
        return reply.redirect(`/ui/login?next=${encodeURIComponent(req.url)}`, 303);
      }
      reply.header('hx-redirect', '/ui/login');
      throw new HttpError(401, 'not logged in (or the session expired): log in at /ui/login');
    }
    if (!grants(session.token.role, role)) throw new HttpError(403, `this needs the ${role} role; you are logged in as ${session.token.name} (${session.token.role})`);
    req.token = session.token;
    req.consoleUser = { name: session.token.name, role: session.token.role, csrf: csrfOf(id) };
  };
}

/** A preHandler (the form body is parsed by then): state-changing requests must carry the session's CSRF token. */
export async function requireCsrf(req: FastifyRequest): Promise<void> {
  const expected = req.consoleUser?.csrf;
  const header = req.headers['x-csrf-token'];
  const field = (req.body as Record<string, unknown> | undefined)?._csrf;
  const given = typeof header === 'string' ? header : typeof field === 'string' ? field : '';
  const ok = expected !== undefined && given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
  if (!ok) throw new HttpError(403, 'missing or wrong CSRF token (x-csrf-token header or _csrf field): reload the page');
}

/** May this console user do what needs `role`? (What buttons a page shows.) */
export const may = (req: FastifyRequest, role: Role): boolean => req.consoleUser !== null && grants(req.consoleUser.role, role);
