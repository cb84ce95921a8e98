import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * One info line per request the operator wants to see: by default writes and errors, because
 * boot endpoints answer thousands of reads a minute during a mass reboot. The token appears by
 * id and name only; its secret is never in a request's log line.
 */
export function installRequestLog(app: FastifyInstance, mode: Config['log']['requests']): void {
  if (mode === 'off') return;
  app.addHook('onResponse', async (req, reply) => {
    if (mode === 'writes' && READS.has(req.method) && reply.statusCode < 400) return;
    req.log.info(
      {
        method: req.method,
        url: req.url,
        route: req.routeOptions.url ?? null,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        token: req.token ? { id: req.token.id, name: req.token.name } : null,
      },
      'request',
    );
  });
}
