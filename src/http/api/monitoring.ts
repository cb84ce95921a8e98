import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { HttpContext } from '../context.js';

/** Liveness for load balancers and Prometheus scraping; both open, neither touches secrets. */
export const monitoringRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, registry }) => {
  app.get('/healthz', { schema: { tags: ['health'] } }, async () => {
    cmdb.machines.count();
    return { status: 'ok', schema: cmdb.schemaVersion() };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
};
