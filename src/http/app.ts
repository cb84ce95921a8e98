import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from 'pino';
import { Counter, Histogram } from 'prom-client';
import { sampleTemplateData, TemplateStore } from '../boot/index.js';
import { Catalog } from '../catalog/index.js';
import { EventFeed } from '../events/feed.js';
import type { HttpContext } from './context.js';
import { installErrorHandler } from './errors.js';
import { guardBodies, guardConnections } from './guards.js';
import { MachineDoor } from './machine-door.js';
import { artifactRoutes } from './routes/artifacts.js';
import { assignmentRoutes } from './routes/assignments.js';
import { bootRoutes } from './routes/boot.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { imageRoutes } from './routes/images.js';
import { leaseRoutes } from './routes/leases.js';
import { machineFactsRoutes } from './routes/machine-facts.js';
import { machineHealthRoutes } from './routes/machine-health.js';
import { machineRoutes } from './routes/machines.js';
import { metadataRoutes } from './routes/metadata.js';
import { rolloutRoutes } from './routes/rollouts.js';
import { powerRoutes } from './routes/power.js';
import { subnetRoutes } from './routes/subnets.js';
import { tokenRoutes } from './routes/tokens.js';

export interface HttpAppOptions extends Omit<HttpContext, 'catalog' | 'templates' | 'feed' | 'machineDoor'> {
  /** These three are made from cmdb and config when not given. */
  catalog?: Catalog;
  templates?: TemplateStore;
  feed?: EventFeed;
  logger?: Logger;
}

/** Builds the fastify app: REST API, boot endpoints, artifacts, metrics. Does not listen. */
export async function buildHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const tls = config.http.tls.cert ? { cert: readFileSync(config.http.tls.cert), key: readFileSync(config.http.tls.key) } : null;
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger | undefined,
    // Boot endpoints see thousands of requests a minute: per-request lines stay out of the log.
    logController: new LogController({ disableRequestLogging: true }),
    // Routes that take more (import, publish) say so themselves.
    bodyLimit: config.http.apiBodyLimitBytes,
    // Slow or stalled clients must not hold sockets forever.
    // Node checks request timeouts on a timer (30 s by default): check at least twice per timeout.
    serverFactory: (handler) => {
      const timing = { requestTimeout: config.http.requestTimeoutMs, connectionsCheckingInterval: Math.min(30_000, Math.ceil(config.http.requestTimeoutMs / 2)) };
      const server = tls ? createHttpsServer({ ...tls, ...timing }, handler) : createHttpServer(timing, handler);
      // As fastify's own default: idle keep-alive connections outlive client pools' reuse windows.
      server.keepAliveTimeout = 72_000;
      server.setTimeout(config.http.idleTimeoutMs, (socket) => socket.destroy());
      guardConnections(server, config.http, opts.registry);
      return server;
    },
    routerOptions: { maxParamLength: 512 },
    // verbose: errors carry the failing schema, so a message can name what was expected.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false, verbose: true } },
    // The https variant differs only in its server type; the routes do not care which.
  }) as unknown as FastifyInstance;
  app.decorateRequest('token', null);

  app.addContentTypeParser('text/csv', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  installErrorHandler(app);
  guardBodies(app, config.http, opts.registry);
  const ctx: HttpContext = {
    cmdb: opts.cmdb,
    config,
    registry: opts.registry,
    catalog: opts.catalog ?? new Catalog(opts.cmdb, config),
    templates: opts.templates ?? new TemplateStore(config.boot.templatesDir, opts.logger, sampleTemplateData(config)),
    feed: opts.feed ?? new EventFeed(opts.cmdb),
    machineDoor: new MachineDoor(opts.cmdb, config, opts.registry),
  };
  app.addHook('onClose', async () => ctx.feed.close());
  installHttpMetrics(app, ctx);

  await app.register(swagger, {
    openapi: {
      info: { title: 'livery', description: 'Diskless PXE boot server and live-image catalog', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(healthRoutes, ctx);
  await app.register(machineRoutes, ctx);
  await app.register(subnetRoutes, ctx);
  await app.register(leaseRoutes, ctx);
  await app.register(tokenRoutes, ctx);
  await app.register(imageRoutes, ctx);
  await app.register(artifactRoutes, ctx);
  await app.register(bootRoutes, ctx);
  await app.register(metadataRoutes, ctx);
  await app.register(machineHealthRoutes, ctx);
  await app.register(machineFactsRoutes, ctx);
  await app.register(eventRoutes, ctx);
  await app.register(rolloutRoutes, ctx);
  await app.register(powerRoutes, ctx);
  await app.register(assignmentRoutes, ctx);
  return app;
}

function installHttpMetrics(app: FastifyInstance, { registry }: HttpContext): void {
  const requests = new Counter({
    name: 'livery_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'livery_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ route, method: req.method, status: reply.statusCode });
    duration.observe({ route }, reply.elapsedTime / 1000);
  });
}
