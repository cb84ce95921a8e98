import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { LeaseRecord, Page } from '../response-schemas.js';

/** /v1/leases: what the DHCP server has handed out (read-only; leases change only by DHCP). */
export const leaseRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb }) => {
  app.get(
    '/v1/leases',
    {
      onRequest: requireRole(cmdb, 'reader'),
      schema: {
        tags: ['leases'],
        operationId: 'listLeases',
        summary: 'List DHCP leases, by subnet and state',
        response: { 200: json(Page(LeaseRecord, Type.Null()), 'the leases'), ...errors(400, ...AUTH_ERRORS, 404) },
        querystring: Type.Object({
          subnet: Type.Optional(Type.String()),
          state: Type.Optional(Type.Union(['offered', 'bound', 'released', 'declined'].map((s) => Type.Literal(s)))),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
        }),
      },
    },
    async (req) => {
      const subnet = req.query.subnet ? cmdb.subnets.get(req.query.subnet) : null;
      const items = cmdb.leases.list({ subnetId: subnet?.id, state: req.query.state as never, limit: req.query.limit });
      return { items, next: null };
    },
  );
};
