import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { machineBoots } from '../../boot/machine-trace.js';
import { requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { sseCutCounter, streamEvents } from '../sse.js';
import { AUTH_ERRORS, body, errors, json } from '../openapi.js';
import { TraceRecord } from '../response-schemas.js';

export { SSE_MAX_BUFFERED_BYTES } from '../sse.js';

/** The event stream (Server-Sent Events) and per-machine boot traces. */
export const eventRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, feed, registry }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  // Registered at start, so /metrics shows the counter at 0 before any stream was cut.
  sseCutCounter(registry);

  app.get(
    '/v1/events',
    {
      ...read,
      schema: {
        tags: ['events'],
        operationId: 'streamEvents',
        summary: 'Follow events as Server-Sent Events (resumes after Last-Event-ID)',
        response: { 200: body('text/event-stream', 'the event stream: `id`, `event` (its type) and `data` (the event as JSON) per event'), ...errors(400, ...AUTH_ERRORS) },
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
      streamEvents(reply, feed, registry, after, (e) =>
        (types && !types.has(e.type)) || (mac && e.mac !== mac) ? null : `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`,
      );
    },
  );

  app.get(
    '/v1/machines/:ref/trace',
    {
      ...read,
      schema: {
        tags: ['machines'],
        operationId: 'getMachineTrace',
        summary: "A machine's recent boots, stage by stage",
        params: Type.Object({ ref: Type.String() }),
        querystring: Type.Object({ boots: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })) }),
        response: { 200: json(TraceRecord, 'the boots, oldest first'), ...errors(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (req) => {
      const machine = cmdb.machines.get(req.params.ref);
      const boots = machineBoots(cmdb, machine);
      return { machine: { id: machine.id, hostname: machine.hostname, macs: machine.macs }, boots: boots.slice(-(req.query.boots ?? 5)) };
    },
  );
};
