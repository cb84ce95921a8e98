import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from 'pino';
import { Counter, Histogram } from 'prom-client';
import { BootStepBatch, sampleTemplateData, TemplateStore } from '../boot/index.js';
import { Catalog } from '../catalog/index.js';
import { MachineCache } from '../cmdb/index.js';
import { consoleRoutes } from '../console/index.js';
import { EventFeed } from './event-feed.js';
import type { HttpContext } from './context.js';
import { installRequestLog } from './request-log.js';
import { auditRoutes } from './api/audit.js';
import { nodeRoutes } from './api/nodes.js';
import { installErrorHandler } from './errors.js';
import { installOpenApi } from './openapi.js';
import { guardBodies, guardConnections } from './guards.js';
import { MachineDoor } from './machine-door.js';
import { assignmentRoutes } from './api/assignments.js';
import { eventRoutes } from './api/events.js';
import { explainRoutes } from './api/explain.js';
import { imageRoutes } from './api/images.js';
import { leaseRoutes } from './api/leases.js';
import { machineRoutes } from './api/machines.js';
import { monitoringRoutes } from './api/monitoring.js';
import { powerRoutes } from './api/power.js';
import { rolloutRoutes } from './api/rollouts.js';
import { subnetRoutes } from './api/subnets.js';
import { tokenRoutes } from './api/tokens.js';
import { artifactRoutes } from './machine/artifacts.js';
import { bootRoutes } from './machine/boot.js';
import { machineHealthRoutes } from './machine/health.js';
import { metadataRoutes } from './machine/metadata.js';
import { machineFactsRoutes } from './api/machine-facts.js';

export interface HttpAppOptions extends Omit<HttpContext, 'machineCache' | 'catalog' | 'templates' | 'feed' | 'machineDoor' | 'bootSteps'> {
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
    // Shim, booted by URL, asks for its GRUB at <its own folder>/ + '/grubx64.efi' (/loaders//grubx64.efi).
    routerOptions: { maxParamLength: 512, ignoreDuplicateSlashes: true },
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
    machineCache: new MachineCache(opts.cmdb.machines, opts.cmdb.assignments, opts.cmdb),
    config,
    registry: opts.registry,
    catalog: opts.catalog ?? new Catalog(opts.cmdb, config),
    templates: opts.templates ?? new TemplateStore(config.boot.templatesDir, opts.logger, sampleTemplateData(config)),
    feed: opts.feed ?? new EventFeed(opts.cmdb),
    machineDoor: new MachineDoor(opts.cmdb, config, opts.registry),
    bootSteps: new BootStepBatch(opts.cmdb, app.log),
  };
  app.addHook('onClose', async () => {
    ctx.feed.close();
    await ctx.bootSteps.close();
  });
  afterBootSteps(app, ctx.bootSteps);
  installHttpMetrics(app, ctx);
  installRequestLog(app, config.log.requests);

  await installOpenApi(app);

  await app.register(monitoringRoutes, ctx);
  await app.register(machineRoutes, ctx);
  await app.register(subnetRoutes, ctx);
  await app.register(leaseRoutes, ctx);
  await app.register(tokenRoutes, ctx);
  await app.register(imageRoutes, ctx);
  await app.register(artifactRoutes, ctx);
  await app.register(bootRoutes, ctx);
  await app.register(explainRoutes, ctx);
  await app.register(metadataRoutes, ctx);
  await app.register(machineHealthRoutes, ctx);
  await app.register(machineFactsRoutes, ctx);
  await app.register(eventRoutes, ctx);
  await app.register(rolloutRoutes, ctx);
  await app.register(powerRoutes, ctx);
  await app.register(assignmentRoutes, ctx);
  await app.register(auditRoutes, ctx);
  await app.register(nodeRoutes, ctx);
  await app.register(consoleRoutes, ctx);
  return app;
}

/** Every request is answered after the boot steps handed over before it are written (see BootStepBatch), unless its route is AHEAD_OF_BOOT_STEPS. */
function afterBootSteps(app: FastifyInstance, steps: BootStepBatch): void {
  app.addHook('onRequest', (req, _reply, done) => {
    if (!steps.pending() || req.routeOptions.config.aheadOfBootSteps) return done();
    steps.written().then(() => done(), done);
  });
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
