import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { CONSOLE_CSS } from './style.js';

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

const require = createRequire(import.meta.url);
const fromPackage = (file: string) => readFileSync(require.resolve(file));

const asset = (type: string, body: Buffer): Asset => ({ type, body, gzip: gzipSync(body, { level: 9 }) });

/**
 * The console's static files, read once at start: htmx and its SSE extension from their npm
 * packages (no CDN: a console on an isolated provisioning network must work), and the stylesheet.
 * Each is kept gzipped too, for browsers that take it.
 */
export function consoleAssets(): Map<string, Asset> {
  return new Map([
    ['htmx.min.js', asset('text/javascript; charset=utf-8', fromPackage('htmx.org/dist/htmx.min.js'))],
    ['sse.js', asset('text/javascript; charset=utf-8', fromPackage('htmx-ext-sse/dist/sse.min.js'))],
    ['console.css', asset('text/css; charset=utf-8', Buffer.from(CONSOLE_CSS))],
  ]);
}

export function assetRoutes(app: FastifyInstance): void {
  const assets = consoleAssets();
  app.get<{ Params: { file: string } }>('/ui/assets/:file', async (req, reply) => {
    const a = assets.get(req.params.file);
    if (!a) return reply.code(404).send({ error: `no console asset ${req.params.file}; there are ${[...assets.keys()].join(', ')}` });
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    reply.header('content-type', a.type).header('cache-control', 'public, max-age=3600').header('vary', 'accept-encoding');
    if (gzip) reply.header('content-encoding', 'gzip');
    return reply.send(gzip ? a.gzip : a.body);
  });
}
