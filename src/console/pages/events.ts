import type { FastifyInstance } from 'fastify';
import type { Cmdb } from '../../cmdb/index.js';
import type { LivEvent } from '../../cmdb/types.js';
import { html, type Html } from '../html.js';
import { layout, sendHtml, when } from '../layout.js';
import { requireSession } from '../session.js';

export interface EventQuery {
  type?: string;
  mac?: string;
}

/** The event filter as the stream and the page both apply it: comma-separated types, one MAC. */
export function eventFilter(q: EventQuery): { types?: string[]; mac?: string } {
  const types = q.type?.split(',').map((t) => t.trim()).filter(Boolean);
  return { types: types?.length ? types : undefined, mac: q.mac?.trim().toLowerCase() || undefined };
}

export const matchesFilter = (e: LivEvent, f: { types?: string[]; mac?: string }): boolean =>
  (!f.types || f.types.includes(e.type)) && (!f.mac || e.mac === f.mac);

/** One event as a table row (the page's list and the live stream's rows are the same markup). */
export function eventRow(e: LivEvent): Html {
  const detail = Object.keys(e.detail).length ? JSON.stringify(e.detail) : '';
  return html`<tr id="e-${e.id}"><td class="mono">${when(e.at)}</td><td>${e.type}</td>
<td class="mono">${e.machineId ? html`<a href="/ui/machines/${e.machineId}">${e.mac ?? `#${e.machineId}`}</a>` : (e.mac ?? '')}</td>
<td class="mono wide">${e.imageId?.slice(0, 12) ?? ''}</td><td class="mono">${detail.length > 300 ? `${detail.slice(0, 300)}…` : detail}</td></tr>`;
}

export function eventTable(events: LivEvent[], live: string | null): Html {
  return html`<table><thead><tr><th>Time</th><th>Type</th><th>Machine</th><th class="wide">Image</th><th>Detail</th></tr></thead>
<tbody ${live ? html`sse-swap="${live}" hx-swap="afterbegin"` : ''}>${events.map(eventRow)}</tbody></table>`;
}

/** The live event feed, filterable by type and MAC; new events are added at the top as they happen. */
export function eventRoutes(app: FastifyInstance, cmdb: Cmdb): void {
  app.get<{ Querystring: EventQuery }>('/ui/events', { onRequest: requireSession(cmdb, 'reader') }, async (req, reply) => {
    const filter = eventFilter(req.query);
    const stream = `/ui/stream?${new URLSearchParams(Object.entries(req.query).filter(([, v]) => v) as [string, string][])}`;
    const body = html`<h1>Events</h1>
<form class="filters card" method="get" action="/ui/events">
<label>Types <input name="type" value="${req.query.type ?? ''}" placeholder="booted,dhcp-ack" size="24"></label>
<label>MAC <input name="mac" value="${req.query.mac ?? ''}" placeholder="52:54:00:…" size="18"></label>
<button type="submit">Filter</button>
</form>
<section class="card" hx-ext="sse" sse-connect="${stream}" aria-live="polite">
${eventTable(cmdb.events.recent(200, filter), 'feed')}
</section>`;
    return sendHtml(reply, layout(req, 'Events', 'Events', body));
  });
}
