import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Counter } from 'prom-client';
import { traceBoots, type BootTrace } from '../../boot/trace.js';
import { healthOf, type HealthVerdict } from '../../health/verdict.js';
import { requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';

/** What may wait in memory for one event stream's client: a few thousand events. */
export const SSE_MAX_BUFFERED_BYTES = 1024 * 1024;

/** The event stream (Server-Sent Events) and per-machine boot traces. */
export const eventRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, feed, registry }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const cut = new Counter({
    name: 'livery_sse_streams_cut_total',
    help:
      'Event streams closed while their client was not reading: stalled (nothing drained for http.idleTimeoutMs) ' +
      `or buffer (more than ${SSE_MAX_BUFFERED_BYTES} bytes waiting)`,
    labelNames: ['reason'],
    registers: [registry],
  });

  app.get(
    '/v1/events',
    {
      ...read,
      schema: {
        tags: ['events'],
        querystring: Type.Object({
          after: Type.Optional(Type.Integer({ minimum: 0 })),
          type: Type.Optional(Type.String()),
          mac: Type.Optional(Type.String()),
        }),
      },
    },
    async (req, reply) => {
      const lastId = req.headers['last-event-id'];
      const after = req.query.after ?? (typeof lastId === 'string' && /^\d+$/.test(lastId) ? Number(lastId) : null);
      const types = req.query.type ? new Set(req.query.type.split(',')) : null;
      const mac = req.query.mac?.toLowerCase() ?? null;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(': livery events\n\n');
      // The feed stops sending once a write reports a full buffer, so this bound only catches
      // what one page of outsized events could add; a client that stops reading is cut by the
      // HTTP idle timeout (no bytes moving), counted as stalled below.
      let waitingForDrain = false;
      const write = (text: string): boolean => {
        if (res.destroyed) return false;
        const room = res.write(text);
        if (res.writableLength > SSE_MAX_BUFFERED_BYTES) {
          cut.inc({ reason: 'buffer' });
          res.destroy();
          return false;
        }
        waitingForDrain ||= !room;
        return room;
      };
      const unsubscribe = feed.subscribe(
        {
          send: (e) => {
            if (types && !types.has(e.type)) return true;
            if (mac && e.mac !== mac) return true;
            return write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
          },
          drained: () =>
            new Promise<void>((resolve) => {
              if (res.destroyed) return resolve();
              const done = () => {
                // On 'close' the flag stays set: the close handler counts a stream cut while stalled.
                if (!res.destroyed) waitingForDrain = false;
                res.off('drain', done);
                res.off('close', done);
                resolve();
              };
              res.on('drain', done);
              res.on('close', done);
            }),
        },
        after,
      );
      // A comment every 15 s keeps proxies from closing an idle stream.
      const keepalive = setInterval(() => write(': keepalive\n\n'), 15_000);
      res.once('close', () => {
        if (waitingForDrain && !res.writableFinished) cut.inc({ reason: 'stalled' });
        clearInterval(keepalive);
        unsubscribe();
      });
    },
  );

  app.get(
    '/v1/machines/:ref/trace',
    { ...read, schema: { tags: ['machines'], params: Type.Object({ ref: Type.String() }), querystring: Type.Object({ boots: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })) }) } },
    async (req) => {
      const machine = cmdb.machines.get(req.params.ref);
      const events = machine.macs.flatMap((mac) => cmdb.events.forMac(mac, 1000)).sort((a, b) => a.id - b.id);
      const boots = traceBoots(events);
      addHealthVerdict(boots, healthOf(cmdb, machine));
      return { machine: { id: machine.id, hostname: machine.hostname, macs: machine.macs }, boots: boots.slice(-(req.query.boots ?? 5)) };
    },
  );
};

/**
 * The latest boot's verdict when no report made it: healthy at the phone-home for an image
 * without checks, `unhealthy: no report` once the agent's time is up. Neither is an event (no
 * one is there to write it at that moment), so the trace derives them as it is read.
 */
function addHealthVerdict(boots: BootTrace[], verdict: HealthVerdict): void {
  const last = boots[boots.length - 1];
  if (!last?.complete || last.reached !== 'booted' || verdict.at === null) return;
  if (verdict.state !== 'healthy' && verdict.state !== 'unhealthy') return;
  const event = verdict.reason === 'no report' ? 'no-report' : 'no-checks';
  last.stages.push({ stage: verdict.state, at: verdict.at, lastAt: verdict.at, count: 1, event, detail: { reason: verdict.reason } });
  last.reached = verdict.state;
}
