import type { FastifyInstance } from 'fastify';
import { decide } from '../../boot/index.js';
import { hasCredentials, type Bmc } from '../../cmdb/bmcs.js';
import type { Cmdb } from '../../cmdb/index.js';
import { formatKeyValues } from '../../cmdb/key-values.js';
import type { Machine } from '../../cmdb/types.js';
import { machineBoots } from '../../boot/machine-trace.js';
import type { BootTrace } from '../../boot/trace.js';
import { actorOf, HttpError } from '../../http/auth.js';
import type { HttpContext } from '../../http/context.js';
import { POWER_ACTIONS, type PowerAction } from '../../power/types.js';
import type { PowerService } from '../../power/service.js';
import { html, type Html } from '../html.js';
import { layout, sendHtml, when } from '../layout.js';
import { may, requireCsrf, requireSession } from '../session.js';
import { eventTable } from './events.js';
import { bootsWhat, imageLabel, powerOf } from './fleet.js';

/** One boot as a row of stages with their times; a boot that stopped ends with where it stopped. */
function timeline(cmdb: Cmdb, boot: BootTrace): Html {
  return html`<div class="boot"><p><strong>${when(boot.startedAt)}</strong> · ${imageLabel(cmdb, boot.imageId)} ·
${boot.complete ? html`<span class="ok">complete</span>` : html`<span class="bad">stopped before ${boot.stoppedBefore ?? '?'}</span>`}</p>
<ol class="timeline">${boot.stages.map(
    (s) => html`<li class="${s.stage === 'unhealthy' ? 'bad' : ''}"><strong>${s.stage}</strong> <span class="mono">${when(s.at).slice(11)}</span>${s.count > 1 ? ` ×${s.count}` : ''}</li>`,
  )}${boot.complete ? '' : html`<li class="stop">✗ ${boot.stoppedBefore ?? 'next stage'}</li>`}</ol>
${boot.lastStep ? html`<p class="muted">${boot.lastStep}</p>` : ''}</div>`;
}

function record(cmdb: Cmdb, m: Machine): Html {
  const rows: [string, Html | string][] = [
    ['Hostname', m.hostname ?? '—'],
    ['MACs', m.macs.join(', ')],
    ['State', m.state],
    ['Site', m.site ?? '—'],
    ['Labels', formatKeyValues(m.labels) || '—'],
    ['Boots', bootsWhat(m)],
    ['Address', m.ip ?? '—'],
    ['Subnet', m.subnet ?? '—'],
    ['Kernel args', m.kernelArgs || '—'],
    ['Last seen', when(m.lastSeenAt)],
    ['Power', powerOf(cmdb, m)],
  ];
  return html`<table>${rows.map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${v}</td></tr>`)}</table>`;
}

function powerForm(m: Machine, bmc: Bmc | null): Html {
  if (!bmc) return html`<p class="muted">No BMC registered: power actions need one (<code>livery machine set ${m.macs[0] ?? m.id} --bmc ipmi://USER@ADDRESS --bmc-password-file FILE</code>).</p>`;
  if (!hasCredentials(bmc)) {
    return html`<p class="muted">Commissioning found a BMC at ${bmc.address}; power actions need its credentials (<code>livery machine set ${m.macs[0] ?? m.id} --bmc ${bmc.driver}://USER@${bmc.address} --bmc-password-file FILE</code>).</p>`;
  }
  const actions = POWER_ACTIONS.filter((a) => a !== 'status');
  return html`<div class="chips">${actions.map(
    (a) => html`<form class="inline" method="post" action="/ui/machines/${m.id}/power" hx-post="/ui/machines/${m.id}/power" hx-target="#power-result"
 hx-confirm="Power ${a} ${m.hostname ?? m.macs[0] ?? ''}?"><input type="hidden" name="action" value="${a}"><button type="submit" class="${a === 'off' || a === 'cycle' || a === 'reset' ? 'danger' : ''}">${a}</button></form>`,
  )}</div><div id="power-result" role="status"></div>`;
}

/** One machine: its record, the boot decision with reasons, its last boots as timelines, power, recent events. */
export function machineRoutes(app: FastifyInstance, ctx: HttpContext, power: PowerService): void {
  const { cmdb } = ctx;
  app.get<{ Params: { ref: string } }>('/ui/machines/:ref', { onRequest: requireSession(cmdb, 'reader') }, async (req, reply) => {
    const m = cmdb.machines.get(req.params.ref);
    const plan = decide({ mac: m.macs[0]!, firmware: 'ipxe', arch: 'x86_64', archCode: null, subnetHint: null, door: 'explain' }, ctx);
    const boots = machineBoots(cmdb, m).slice(-5).reverse();
    const events = m.macs.length ? cmdb.events.recent(30, { mac: m.macs[0] }) : [];
    const body = html`<h1>${m.hostname ?? `Machine #${m.id}`}</h1>
<div hx-ext="sse" sse-connect="/ui/stream?mac=${m.macs[0] ?? ''}">
<section class="card" id="record" hx-get="/ui/machines/${m.id}" hx-select="#record" hx-target="this" hx-swap="outerHTML" hx-trigger="sse:m${m.id} throttle:500ms">
<h2>Record</h2>${record(cmdb, m)}</section>
<section class="card"><h2>Next boot (explain)</h2>
<p><strong>${plan.action}</strong> ${plan.image ? html`${plan.image.name} ${plan.image.version} <span class="mono muted">${plan.image.id.slice(0, 12)}</span>` : ''}</p>
<ol>${plan.reasons.map((r) => html`<li>${r}</li>`)}</ol></section>
${may(req, 'operator') ? html`<section class="card"><h2>Power</h2>${powerForm(m, cmdb.bmcs.get(m.id))}</section>` : ''}
<section class="card" id="boots" hx-get="/ui/machines/${m.id}" hx-select="#boots" hx-target="this" hx-swap="outerHTML" hx-trigger="sse:m${m.id} throttle:500ms">
<h2>Last boots</h2>${boots.length ? boots.map((b) => timeline(cmdb, b)) : html`<p class="muted">No boot recorded yet.</p>`}</section>
<section class="card"><h2>Recent events</h2>${eventTable(events, 'feed')}</section>
</div>`;
    return sendHtml(reply, layout(req, m.hostname ?? `#${m.id}`, 'Fleet', body));
  });

  app.post<{ Params: { ref: string }; Body: { action?: string } }>(
    '/ui/machines/:ref/power',
    { onRequest: requireSession(cmdb, 'operator'), preHandler: requireCsrf },
    async (req, reply) => {
      const action = req.body?.action as PowerAction;
      if (!POWER_ACTIONS.includes(action)) throw new HttpError(400, `action: must be one of ${POWER_ACTIONS.join(', ')}`);
      const [r] = await power.act([cmdb.machines.get(req.params.ref)], action, actorOf(req));
      const text = r!.ok ? html`<p class="ok">${action}: done (was ${r!.state ?? 'unknown'})</p>` : html`<p class="bad">${action} failed: ${r!.error}</p>`;
      return sendHtml(reply, req.headers['hx-request'] !== undefined ? text : layout(req, 'Power', 'Fleet', text));
    },
  );
}
