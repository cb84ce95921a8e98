import type { FastifyInstance } from 'fastify';
import type { Cmdb } from '../cmdb/index.js';
import type { Machine } from '../cmdb/types.js';
import type { EventFeed } from '../http/event-feed.js';
import { sseFrame, streamEvents } from '../http/sse.js';
import type { Registry } from 'prom-client';
import { eventFilter, eventRow, matchesFilter, type EventQuery } from './pages/events.js';
import { fleetRow } from './pages/fleet.js';
import { requireSession } from './session.js';

/**
 * The console's live updates, as HTML for htmx's SSE extension: every event (that passes the
 * page's filter) as a `feed` row, and for an event about a machine, that machine's fresh fleet
 * row as `m<id>`, which its row on the fleet page swaps in and the machine page listens for.
 */
export function streamRoutes(app: FastifyInstance, cmdb: Cmdb, feed: EventFeed, registry: Registry): void {
  app.get<{ Querystring: EventQuery }>('/ui/stream', { onRequest: requireSession(cmdb, 'reader') }, async (req, reply) => {
    const filter = eventFilter(req.query);
    streamEvents(reply, feed, registry, null, (e) => {
      const machine: Machine | null = e.machineId !== null ? cmdb.machines.find(e.machineId) : e.mac ? cmdb.machines.byCanonicalMac(e.mac) : null;
      const row = matchesFilter(e, filter) ? sseFrame('feed', eventRow(e).text, e.id) : '';
      const machineRow = machine ? sseFrame(`m${machine.id}`, fleetRow(cmdb, machine).text) : '';
      return row + machineRow || null;
    });
  });
}
