import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HttpError } from '../auth.js';
import type { HttpContext } from '../context.js';
import { empty, errors, OPEN } from '../openapi.js';

/**
 * The agent's health report after boot: healthy, or unhealthy with each failing check and its
 * last output lines. Accepted only for the image the machine last phoned home with, so a late
 * report from an earlier boot cannot pass a machine that now runs something else.
 */
export const machineHealthRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, machineDoor }) => {
  app.post(
    '/v1/machines/:mac/health',
    {
      bodyLimit: 64 * 1024,
      schema: {
        tags: ['machine-facing'],
        operationId: 'reportHealth',
        summary: "The agent's health report after boot, for the image it phoned home with",
        security: OPEN,
        response: { 204: empty('recorded'), ...errors(400, 403, 404, 409, 429) },
        params: Type.Object({ mac: Type.String({ maxLength: 64 }) }),
        body: Type.Object(
          {
            imageId: Type.String({ maxLength: 64 }),
            status: Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy')]),
            failing: Type.Array(Type.Object({ check: Type.String({ maxLength: 1100 }), output: Type.String({ maxLength: 8192 }) }, { additionalProperties: false }), {
              maxItems: 64,
            }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const { mac, machine } = machineDoor.machineCalling(req, req.params.mac, 'a health report');
      const { imageId, status, failing } = req.body;
      if (status === 'healthy' && failing.length > 0) throw new HttpError(400, 'failing: must be empty when status is healthy');
      const booted = cmdb.events.latestOf(machine.macs, ['booted']);
      if (!booted) throw new HttpError(409, `imageId: machine ${mac} has not phoned home since it booted; report health after POST /v1/machines/${mac}/booted`);
      if (booted.imageId !== imageId) throw new HttpError(409, `imageId: machine ${mac} booted image ${booted.imageId}, not ${imageId}`);
      await cmdb.soon(() => cmdb.events.add({ type: status, mac, machineId: machine.id, imageId, detail: { failing, from: req.ip } }));
      return reply.code(204).send();
    },
  );
};
