import type { FastifyInstance } from 'fastify';
import type { Cmdb } from '../../cmdb/index.js';
import { actorOf, HttpError } from '../../http/auth.js';
import { rolloutDetail } from '../../http/api/rollouts.js';
import { changeRollout } from '../../rollout/commands.js';
import { html, type Html } from '../html.js';
import { afterWrite, layout, sendHtml, when } from '../layout.js';
import { may, requireCsrf, requireSession } from '../session.js';

const ACTIONS = ['pause', 'resume', 'abort'] as const;
const STATE_CLASS: Record<string, string> = { healthy: 'ok', passed: 'ok', succeeded: 'ok', failed: 'bad', aborted: 'bad', 'rolled-back': 'warn', paused: 'warn' };
const state = (s: string) => html`<span class="${STATE_CLASS[s] ?? ''}">${s}</span>`;

/** What a machine's rollout detail holds that an operator reads: the failing checks' output first. */
function detailOf(detail: Record<string, unknown>): Html {
  if (Object.keys(detail).length === 0) return html``;
  const failing = Array.isArray(detail.failing) ? (detail.failing as { check?: string; output?: string }[]) : [];
  const rest = Object.fromEntries(Object.entries(detail).filter(([k]) => k !== 'failing'));
  return html`${failing.map((f) => html`<div class="bad"><strong>${f.check ?? '?'}</strong><pre>${f.output ?? ''}</pre></div>`)}${Object.keys(rest).length ? html`<pre class="muted">${JSON.stringify(rest)}</pre>` : ''}`;
}

function rolloutSection(cmdb: Cmdb, id: number, canOperate: boolean): Html {
  const r = rolloutDetail(cmdb, id);
  const open = r.state === 'running' || r.state === 'paused';
  return html`<section id="rollout" hx-get="/ui/rollouts/${id}" hx-select="#rollout" hx-target="this" hx-swap="outerHTML" hx-trigger="sse:feed throttle:1s">
<div class="card"><p>${state(r.state)} · wave ${r.wave} · image <span class="mono">${r.imageId.slice(0, 12)}</span> · selector <code>${r.selector}</code>${r.channel ? ` · promotes ${r.channel}` : ''}</p>
${r.reason ? html`<p class="muted">${r.reason}</p>` : ''}
${canOperate && open
    ? html`<div class="chips">${ACTIONS.filter((a) => (a === 'pause' ? r.state === 'running' : a === 'resume' ? r.state === 'paused' : true)).map(
        (a) => html`<form class="inline" method="post" action="/ui/rollouts/${id}/${a}" hx-post="/ui/rollouts/${id}/${a}" hx-confirm="${a} rollout ${id}?"><button type="submit" class="${a === 'abort' ? 'danger' : ''}">${a}</button></form>`,
      )}</div>`
    : ''}</div>
${r.waves.map(
  (w) => html`<div class="card"><h2>Wave ${w.wave} · ${state(w.state)}${w.soakUntil ? ` · soaking until ${when(w.soakUntil)}` : ''}</h2>
${w.reason ? html`<p class="muted">${w.reason}</p>` : ''}
<table><thead><tr><th>Machine</th><th>State</th><th>Since</th><th>Cycles</th><th>Detail</th></tr></thead><tbody>${w.machines.map(
    (m) => html`<tr><td><a href="/ui/machines/${m.machineId}">${m.hostname ?? m.mac ?? `#${m.machineId}`}</a></td><td>${state(m.state)}${m.phase === 'back' ? ' (rolling back)' : ''}</td>
<td>${when(m.since)}</td><td>${m.cycles}</td><td>${detailOf(m.detail)}</td></tr>`,
  )}</tbody></table></div>`,
)}</section>`;
}

/** Rollouts: the list, and one rollout's waves and machines, live, with pause, resume and abort. */
export function rolloutRoutes(app: FastifyInstance, cmdb: Cmdb): void {
  const read = { onRequest: requireSession(cmdb, 'reader') };
  app.get('/ui/rollouts', read, async (req, reply) => {
    const body = html`<h1>Rollouts</h1><section class="card"><table><thead><tr><th>#</th><th>State</th><th>Image</th><th>Selector</th><th>Wave</th><th>Started</th><th class="wide">By</th></tr></thead>
<tbody>${cmdb.rollouts.list(200).map(
      (r) => html`<tr><td><a href="/ui/rollouts/${r.id}">${r.id}</a></td><td>${state(r.state)}</td><td class="mono">${r.imageId.slice(0, 12)}</td><td><code>${r.selector}</code></td><td>${r.wave}</td><td>${when(r.createdAt)}</td><td class="wide">${r.actor}</td></tr>`,
    )}</tbody></table></section>`;
    return sendHtml(reply, layout(req, 'Rollouts', 'Rollouts', body));
  });

  app.get<{ Params: { id: string } }>('/ui/rollouts/:id', read, async (req, reply) => {
    const id = Number(req.params.id);
    if (!Number.isInteger(id) || id < 1) throw new HttpError(400, 'id: expected a rollout number');
    const body = html`<h1>Rollout ${id}</h1><div hx-ext="sse" sse-connect="/ui/stream">${rolloutSection(cmdb, id, may(req, 'operator'))}</div>`;
    return sendHtml(reply, layout(req, `Rollout ${id}`, 'Rollouts', body));
  });

  for (const a of ACTIONS) {
    app.post<{ Params: { id: string } }>(`/ui/rollouts/:id/${a}`, { onRequest: requireSession(cmdb, 'operator'), preHandler: requireCsrf }, async (req, reply) => {
      changeRollout(cmdb, Number(req.params.id), a, actorOf(req));
      return afterWrite(req, reply, `/ui/rollouts/${req.params.id}`);
    });
  }
}
