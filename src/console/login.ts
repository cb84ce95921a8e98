import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Cmdb } from '../cmdb/index.js';
import type { Config } from '../config/index.js';
import { html } from './html.js';
import { layout, sendHtml } from './layout.js';
import { clearedCookie, cookieOf, requireCsrf, requireSession, SESSION_COOKIE, sessionCookie } from './session.js';

/** Only a path on this server may be where a login returns to (no open redirect). */
const localPath = (next: unknown): string => (typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/');

function loginPage(req: FastifyRequest, next: string, problem: string | null) {
  return layout(
    req,
    'Log in',
    '',
    html`<h1>Log in</h1>
<form class="card narrow" method="post" action="/ui/login">
  <p class="muted">Paste an API token (<code>livery token create NAME --role reader|publisher|operator|admin</code>). The console acts with its role.</p>
  ${problem ? html`<p class="bad" role="alert">${problem}</p>` : ''}
  <label>Token <input name="token" type="password" autocomplete="off" required autofocus></label>
  <input type="hidden" name="next" value="${next}">
  <p><button type="submit">Log in</button></p>
</form>`,
  );
}

/**
 * Login exchanges an API token for a session cookie (HttpOnly, SameSite=Strict, Secure under
 * TLS): the token never sits in the browser's script-reachable storage. Logout ends the session
 * in the CMDB, so a copied cookie stops working too.
 */
export function loginRoutes(app: FastifyInstance, cmdb: Cmdb, config: Config): void {
  const secure = config.http.tls.cert !== '';
  const ttlMs = config.http.sessionHours * 3_600_000;

  app.get<{ Querystring: { next?: string } }>('/ui/login', async (req, reply) => sendHtml(reply, loginPage(req, localPath(req.query.next), null)));

  app.post<{ Body: { token?: string; next?: string } }>('/ui/login', async (req, reply) => {
    const next = localPath(req.body?.next);
    const token = typeof req.body?.token === 'string' ? cmdb.tokens.verify(req.body.token.trim()) : null;
    if (!token) return sendHtml(reply, loginPage(req, next, 'That token is not valid (or it was revoked).'), 401);
    cmdb.tokens.noteUse(token);
    const id = cmdb.sessions.create(token.id, ttlMs);
    return reply.header('set-cookie', sessionCookie(id, Math.floor(ttlMs / 1000), secure)).redirect(next, 303);
  });

  app.post('/ui/logout', { onRequest: requireSession(cmdb, 'reader'), preHandler: requireCsrf }, async (req, reply) => {
    cmdb.sessions.end(cookieOf(req, SESSION_COOKIE)!);
    return reply.header('set-cookie', clearedCookie(secure)).redirect('/ui/login', 303);
  });
}
