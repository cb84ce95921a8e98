import type { FastifyInstance } from 'fastify';
import type { Catalog } from '../../catalog/index.js';
import type { Cmdb } from '../../cmdb/index.js';
import type { Channel, ImageSummary } from '../../cmdb/types.js';
import { actorOf } from '../../http/auth.js';
import { html, type Html } from '../html.js';
import { afterWrite, layout, sendHtml, when } from '../layout.js';
import { may, requireCsrf, requireSession } from '../session.js';

const bytes = (n: number) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

/** A write button in its own form: works as a plain POST, and with htmx asks for confirmation first. */
function action(url: string, label: string, confirm: string, fields: Record<string, string> = {}, danger = false): Html {
  return html`<form class="inline" method="post" action="${url}" hx-post="${url}" hx-confirm="${confirm}">${Object.entries(fields).map(
    ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
  )}<button type="submit" class="${danger ? 'danger' : ''}">${label}</button></form>`;
}

function imageRow(cmdb: Cmdb, image: ImageSummary, channels: Channel[], canWrite: boolean): Html {
  const mine = channels.filter((c) => c.imageId === image.id);
  const others = channels.filter((c) => c.name === image.name && c.imageId !== image.id);
  const pinned = cmdb.fleet.pinned(image.id);
  const users = mine.reduce((n, c) => n + cmdb.fleet.followers(c.name, c.channel), 0) + pinned;
  return html`<tr id="image-${image.id.slice(0, 12)}">
<td><strong>${image.name}</strong> ${image.version}<br><span class="mono muted">${image.id.slice(0, 12)}</span></td>
<td class="wide">${image.os} ${image.arch}<br><span class="muted">${when(image.publishedAt)}</span></td>
<td>${image.artifacts.map((a) => html`<div><strong>${a.role}</strong> ${bytes(a.size)} <span class="mono muted" title="${a.sha256}">${a.sha256.slice(0, 16)}…</span></div>`)}</td>
<td>${mine.map((c) => html`<div>${c.name}@${c.channel}</div>`)}${pinned ? html`<div>${pinned} pinned</div>` : ''}<div class="muted">${users} machine${users === 1 ? '' : 's'}</div></td>
<td>${canWrite
    ? others.map((c) => {
        const n = cmdb.fleet.followers(c.name, c.channel);
        return action(`/ui/images/${image.id}/promote`, `Promote to ${c.channel}`, `Promote ${image.name} ${image.version} to ${c.name}@${c.channel}? ${n} machine${n === 1 ? '' : 's'} would boot it instead of ${c.version} next time.`, { channel: c.channel });
      })
    : ''}</td></tr>`;
}

function channelRow(cmdb: Cmdb, c: Channel, canWrite: boolean): Html {
  const history = cmdb.images.history(c.name, c.channel);
  const n = cmdb.fleet.followers(c.name, c.channel);
  return html`<tr id="channel-${c.name}-${c.channel}"><td><strong>${c.name}@${c.channel}</strong></td><td>${c.version} <span class="mono muted">${c.imageId.slice(0, 12)}</span></td>
<td>${n}</td><td><details><summary>${history.length} change${history.length === 1 ? '' : 's'}</summary><ol>${history.map(
    (h) => html`<li>${when(h.at)} ${h.action} → <span class="mono">${h.imageId.slice(0, 12)}</span> by ${h.actor ?? '?'}</li>`,
  )}</ol></details></td>
<td>${canWrite && history.length > 1 ? action(`/ui/channels/${c.name}/${c.channel}/rollback`, 'Roll back', `Roll back ${c.name}@${c.channel} from ${c.version} to the image it showed before? ${n} machine${n === 1 ? '' : 's'} would boot that instead next time.`, {}, true) : ''}</td></tr>`;
}

/** The catalog: images with sizes, hashes and users, channels with their history, promote and rollback. */
export function imageRoutes(app: FastifyInstance, cmdb: Cmdb, catalog: Catalog): void {
  app.get('/ui/images', { onRequest: requireSession(cmdb, 'reader') }, async (req, reply) => {
    const channels = cmdb.images.channels();
    const canWrite = may(req, 'publisher');
    const body = html`<h1>Images and channels</h1>
<section class="card"><h2>Channels</h2><table><thead><tr><th>Channel</th><th>Image</th><th>Machines following</th><th>History</th><th></th></tr></thead>
<tbody>${channels.map((c) => channelRow(cmdb, c, canWrite))}</tbody></table></section>
<section class="card"><h2>Images</h2><table><thead><tr><th>Image</th><th class="wide">Built for</th><th>Artifacts (size, sha256)</th><th>Used by</th><th></th></tr></thead>
<tbody>${cmdb.images.list().map((i) => imageRow(cmdb, i, channels, canWrite))}</tbody></table></section>`;
    return sendHtml(reply, layout(req, 'Images', 'Images', body));
  });

  const write = { onRequest: requireSession(cmdb, 'publisher'), preHandler: requireCsrf };
  app.post<{ Params: { id: string }; Body: { channel?: string } }>('/ui/images/:id/promote', write, async (req, reply) => {
    catalog.promote(cmdb.images.get(req.params.id).id, req.body?.channel ?? '', actorOf(req));
    return afterWrite(req, reply, '/ui/images');
  });
  app.post<{ Params: { name: string; channel: string } }>('/ui/channels/:name/:channel/rollback', write, async (req, reply) => {
    catalog.rollback(req.params.name, req.params.channel, actorOf(req));
    return afterWrite(req, reply, '/ui/images');
  });
}
