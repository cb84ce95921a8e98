import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { html, jsonAttr, type Html, type Renderable } from './html.js';

const NAV = [
  ['/', 'Fleet'],
  ['/ui/images', 'Images'],
  ['/ui/rollouts', 'Rollouts'],
  ['/ui/events', 'Events'],
] as const;

/**
 * htmx without its injected <style> (the CSP allows none) and without eval; a refused or failed
 * request shows its error (see errorsAsHtml) in the page's #flash instead of doing nothing.
 */
const HTMX_CONFIG = jsonAttr({
  includeIndicatorStyles: false,
  allowEval: false,
  historyCacheSize: 0,
  responseHandling: [
    { code: '204', swap: false },
    { code: '[23]..', swap: true },
    { code: '[45]..', swap: true, error: true, target: '#flash', swapOverride: 'innerHTML' },
  ],
});

/**
 * The frame of every console page: navigation, who is logged in, logout, and the session's
 * CSRF token in hx-headers so every htmx request carries it. `section` marks the current tab.
 */
export function layout(req: FastifyRequest, title: string, section: string, body: Renderable): Html {
  const user = req.consoleUser;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<title>${title} · livery</title>
<link rel="stylesheet" href="/ui/assets/console.css">
<script src="/ui/assets/htmx.min.js" defer></script><script src="/ui/assets/sse.js" defer></script>
</head>
<body hx-headers="${user ? jsonAttr({ 'x-csrf-token': user.csrf }) : '{}'}">
<header><strong>livery</strong>
${user
  ? html`<nav aria-label="Sections">${NAV.map(([href, name]) => html`<a href="${href}" ${name === section ? html`aria-current="page"` : ''}>${name}</a>`)}</nav>
<span class="who">${user.name} (${user.role})</span>
<form class="inline" method="post" action="/ui/logout"><input type="hidden" name="_csrf" value="${user.csrf}"><button type="submit">Log out</button></form>`
  : ''}
</header>
<main><div id="flash" role="alert" aria-live="assertive"></div>${body}</main>
</body></html>`;
}

/** Sends a page or fragment as HTML; console pages are never cached and never framed. */
export function sendHtml(reply: FastifyReply, body: Html, status = 200): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    .header('x-content-type-options', 'nosniff')
    .send(body.text);
}

/** After a write: htmx is told to load `location` (HX-Location keeps it a swap), a plain form post is redirected there. */
export function afterWrite(req: FastifyRequest, reply: FastifyReply, location: string): FastifyReply {
  if (req.headers['hx-request'] !== undefined) return reply.header('hx-redirect', location).code(204).send();
  return reply.redirect(location, 303);
}

/**
 * The API's JSON errors, as an htmx request shows them: a line of HTML (escaped) for #flash.
 * Plain requests keep the JSON: its status and message are the same either way.
 */
export function errorsAsHtml(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.headers['hx-request'] === undefined || reply.statusCode < 400) return payload;
    if (!String(reply.getHeader('content-type') ?? '').startsWith('application/json') || typeof payload !== 'string') return payload;
    const message = (JSON.parse(payload) as { error?: string }).error ?? `HTTP ${reply.statusCode}`;
    reply.header('content-type', 'text/html; charset=utf-8');
    return html`<p class="bad">${message}</p>`.text;
  });
}

/** How long ago an ISO time was, as people say it: "just now", "2 min ago", "3 h ago". */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** An ISO time as the console shows it: UTC, to the second. */
export const when = (iso: string | null): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');
