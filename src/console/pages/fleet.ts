import type { FastifyInstance } from 'fastify';
import { hasCredentials } from '../../cmdb/bmcs.js';
import type { Cmdb } from '../../cmdb/index.js';
import { CmdbError, invalid } from '../../cmdb/errors.js';
import type { FleetFilter } from '../../cmdb/fleet.js';
import { formatKeyValues, parseKeyValues } from '../../cmdb/key-values.js';
import type { Machine, MachineState } from '../../cmdb/types.js';
import { healthOf } from '../../health/verdict.js';
import { html, type Html } from '../html.js';
import { ago, layout, sendHtml, when } from '../layout.js';
import { requireSession } from '../session.js';

export const PAGE_SIZE = 100;
const STATES: MachineState[] = ['discovered', 'registered', 'retired'];

interface FleetQuery {
  q?: string;
  state?: string;
  site?: string;
  label?: string;
  image?: string;
  page?: string;
}

/** What a machine is set to boot: its pinned image, or the channel it follows. */
export const bootsWhat = (m: Machine): string =>
  m.image.id ? `pinned ${m.image.id.slice(0, 12)}` : m.image.name ? `${m.image.name}@${m.image.channel ?? 'stable'}` : '—';

/** An image id as people read it: name and version when the catalog still has it. */
export function imageLabel(cmdb: Cmdb, id: string | null): string {
  if (!id) return '—';
  const image = cmdb.images.find(id);
  return image ? `${image.name} ${image.version}` : id.slice(0, 12);
}

/**
 * A machine's power as livery last learned it from its BMC ("on, 2 min ago"): recorded by every
 * power action and status read, so no page load asks a BMC.
 */
export function powerOf(cmdb: Cmdb, m: Machine): Html {
  const bmc = cmdb.bmcs.get(m.id);
  if (!bmc) return html`<span class="muted" title="no BMC registered">—</span>`;
  if (!hasCredentials(bmc)) return html`<span class="muted" title="BMC at ${bmc.address} found by commissioning">no credentials</span>`;
  if (!bmc.power) return html`<span class="muted" title="no power action or status read yet">unknown</span>`;
  return html`<span class="power ${bmc.power.state === 'on' ? 'ok' : 'muted'}" title="${when(bmc.power.at)}">${bmc.power.state}, ${ago(bmc.power.at)}</span>`;
}

const HEALTH_CLASS = { healthy: 'ok', unhealthy: 'bad', pending: 'warn', 'not-booted': 'muted' } as const;

/**
 * One machine's fleet row. The row listens for its own SSE message (`m<id>`, see stream.ts) and
 * is replaced by the fresh row the server renders when one of the machine's events arrives.
 */
export function fleetRow(cmdb: Cmdb, m: Machine): Html {
  const health = healthOf(cmdb, m);
  return html`<tr id="m-${m.id}" sse-swap="m${m.id}" hx-swap="outerHTML">
<td><a href="/ui/machines/${m.id}">${m.hostname ?? `#${m.id}`}</a></td>
<td class="mono">${m.macs.join(' ')}</td>
<td>${m.state}</td><td>${m.site ?? '—'}</td>
<td class="wide">${formatKeyValues(m.labels)}</td>
<td>${bootsWhat(m)}</td>
<td>${powerOf(cmdb, m)}</td>
<td>${when(health.bootedAt)}<br><span class="muted">${imageLabel(cmdb, health.imageId)}</span> <span class="${HEALTH_CLASS[health.state]}">${health.state}</span></td>
</tr>`;
}

function filterOf(q: FleetQuery): FleetFilter & { page: number } {
  const state = q.state || undefined;
  if (state && !STATES.includes(state as MachineState)) throw invalid('state', `must be one of ${STATES.join(', ')}`);
  const page = Math.max(1, Number.parseInt(q.page ?? '1', 10) || 1);
  return {
    state: state as MachineState | undefined,
    site: q.site || undefined,
    labels: q.label ? parseKeyValues('label', q.label) : undefined,
    image: q.image || undefined,
    text: q.q?.trim() || undefined,
    offset: (page - 1) * PAGE_SIZE,
    limit: PAGE_SIZE,
    page,
  };
}

const linkWith = (q: FleetQuery, change: Partial<FleetQuery>) => `/?${new URLSearchParams(Object.entries({ ...q, ...change }).filter(([, v]) => v) as [string, string][])}`;

function fleetPage(cmdb: Cmdb, q: FleetQuery): { body: Html; ok: boolean } {
  let filter: ReturnType<typeof filterOf> | null = null;
  let problem: string | null = null;
  try {
    filter = filterOf(q);
  } catch (err) {
    if (!(err instanceof CmdbError)) throw err;
    problem = err.message;
  }
  const { machines, total } = filter ? cmdb.fleet.page(filter) : { machines: [], total: 0 };
  const counts = cmdb.fleet.counts();
  const page = filter?.page ?? 1;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const body = html`<h1>Fleet</h1>
<section class="card" aria-label="Counts">
<div class="chips"><span class="muted">By state</span>${Object.entries(counts.byState).map(([state, n]) => html`<a class="chip" href="${linkWith({}, { state })}">${state}: <strong>${n}</strong></a>`)}</div>
<div class="chips"><span class="muted">By image</span>${Object.entries(counts.byImage).map(([image, n]) => html`<a class="chip" href="${linkWith({}, { image })}">${image}: <strong>${n}</strong></a>`)}</div>
</section>
<form class="filters card" method="get" action="/" role="search" hx-get="/" hx-target="#fleet" hx-select="#fleet" hx-swap="outerHTML" hx-push-url="true" hx-trigger="input delay:300ms, change">
<label>Search <input type="search" name="q" value="${q.q ?? ''}" placeholder="hostname, MAC, label, address"></label>
<label>State <select name="state"><option value="">any</option>${STATES.map((s) => html`<option ${q.state === s ? html`selected` : ''}>${s}</option>`)}</select></label>
<label>Site <input name="site" value="${q.site ?? ''}" size="10"></label>
<label>Label <input name="label" value="${q.label ?? ''}" placeholder="role=kvm" size="14"></label>
<label>Image <input name="image" value="${q.image ?? ''}" placeholder="name, name@channel or id" size="16"></label>
<button type="submit">Filter</button>
</form>
<section id="fleet" class="card" hx-ext="sse" sse-connect="/ui/stream">
${problem ? html`<p class="bad" role="alert">${problem}</p>` : ''}
<p class="muted">${total} machine${total === 1 ? '' : 's'}${total > PAGE_SIZE ? `, page ${page} of ${pages}` : ''}</p>
<table><thead><tr><th>Hostname</th><th>MACs</th><th>State</th><th>Site</th><th class="wide">Labels</th><th>Boots</th><th>Power</th><th>Last boot</th></tr></thead>
<tbody>${machines.map((m) => fleetRow(cmdb, m))}</tbody></table>
<nav class="pager" aria-label="Pages">
${page > 1 ? html`<a href="${linkWith(q, { page: String(page - 1) })}" rel="prev">← previous</a>` : ''}
${page < pages ? html`<a href="${linkWith(q, { page: String(page + 1) })}" rel="next">next →</a>` : ''}
</nav>
</section>`;
  return { body, ok: problem === null };
}

/** The fleet at `/`: counts, filters, one page of machines, rows updated live. */
export function fleetRoutes(app: FastifyInstance, cmdb: Cmdb): void {
  app.get<{ Querystring: FleetQuery }>('/', { onRequest: requireSession(cmdb, 'reader') }, async (req, reply) => {
    const { body, ok } = fleetPage(cmdb, req.query);
    // A filter that does not parse is a 400, but htmx's live filter shows the page's own message in place.
    return sendHtml(reply, layout(req, 'Fleet', 'Fleet', body), ok || req.headers['hx-request'] !== undefined ? 200 : 400);
  });
}
