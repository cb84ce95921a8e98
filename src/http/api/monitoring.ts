import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AHEAD_OF_BOOT_STEPS, type HttpContext } from '../context.js';
import { body, json, OPEN } from '../openapi.js';
import { HealthzRecord } from '../response-schemas.js';

/** Liveness for load balancers and Prometheus scraping; both open, neither touches secrets. */
export const monitoringRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, registry }) => {
  app.get('/healthz', { config: AHEAD_OF_BOOT_STEPS, schema: { tags: ['monitoring'], operationId: 'getHealth', summary: 'Liveness: the CMDB answers', security: OPEN, response: { 200: json(HealthzRecord, 'livery is up') } } }, async () => {
    cmdb.machines.count();
    return { status: 'ok' as const, schema: cmdb.schemaVersion() };
  });
  app.get('/metrics', {
    config: AHEAD_OF_BOOT_STEPS,
    schema: { tags: ['monitoring'], operationId: 'getMetrics', summary: 'Prometheus metrics', security: OPEN, response: { 200: body('text/plain', 'the Prometheus text format') } },
  }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
};
