import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Server } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import { closeUnreadBody, HttpError } from './auth.js';

/**
 * Bounds on what one client can hold before it has proved anything: connections per source
 * address and in total, and the time a request body may take to arrive. (Tokens are checked
 * before any body is read, in auth.ts; body sizes are bounded per route.) Machines booting
 * share the server with the API, so an abused API must not take their doors down with it.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A streamed body (bundle publish, import): held to a minimum rate, not a deadline. */
    bodyStream?: boolean;
  }
}

/** Caps connections per source address and in total; refused connections are closed at once and counted. */
export function guardConnections(server: Server, http: Config['http'], registry: Registry): void {
  const open = new Gauge({ name: 'livery_http_connections_open', help: 'Open HTTP connections', registers: [registry] });
  const refused = new Counter({
    name: 'livery_http_connections_refused_total',
    help: 'HTTP connections closed on arrival: per-client (http.maxConnectionsPerClient) or total (http.maxConnections)',
    labelNames: ['reason'],
    registers: [registry],
  });
  const perClient = new Map<string, number>();
  let total = 0;
  server.on('connection', (socket) => {
    const address = socket.remoteAddress ?? '';
    const mine = perClient.get(address) ?? 0;
    const reason = http.maxConnections > 0 && total >= http.maxConnections ? 'total' : http.maxConnectionsPerClient > 0 && mine >= http.maxConnectionsPerClient ? 'per-client' : null;
    if (reason) {
      refused.inc({ reason });
      socket.destroy();
      return;
    }
    total++;
    perClient.set(address, mine + 1);
    open.set(total);
    socket.once('close', () => {
      total--;
      const left = perClient.get(address)! - 1;
      if (left === 0) perClient.delete(address);
      else perClient.set(address, left);
      open.set(total);
    });
  });
}

/**
 * Every request body must arrive whole within http.bodyTimeoutMs, except streamed bodies,
 * which must keep moving at http.minBodyBytesPerSecond (measured over each bodyTimeoutMs
 * window): a body trickled in a byte at a time is dropped in seconds, not at requestTimeoutMs.
 */
export function guardBodies(app: FastifyInstance, http: Config['http'], registry: Registry): void {
  const dropped = new Counter({
    name: 'livery_http_bodies_dropped_total',
    help: 'Requests whose body arrived too slowly (connection closed with 408)',
    labelNames: ['route'],
    registers: [registry],
  });
  app.addHook('onRequest', async (request, reply) => {
    if (request.raw.complete || !hasBody(request)) return;
    // No route will read it: answer now rather than after the body.
    if (request.is404) {
      closeUnreadBody(request, reply);
      throw new HttpError(404, `no route ${request.method} ${request.url.split('?')[0]}`);
    }
    const stream = request.routeOptions.config?.bodyStream === true;
    const socket = request.raw.socket;
    let mark = socket.bytesRead;
    const timer = setInterval(() => {
      if (request.raw.complete) return stop();
      const moved = socket.bytesRead - mark;
      mark = socket.bytesRead;
      // Data waiting in the request's own buffer means livery is the slow side, not the client.
      const waitingOnClient = request.raw.readableLength === 0;
      if (stream && (moved >= (http.minBodyBytesPerSecond * http.bodyTimeoutMs) / 1000 || !waitingOnClient)) return;
      if (!stream && !waitingOnClient) return;
      dropped.inc({ route: request.routeOptions.url ?? 'unmatched' });
      stop();
      socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', () => socket.destroy());
    }, http.bodyTimeoutMs);
    const stop = () => clearInterval(timer);
    request.raw.once('end', stop);
    request.raw.once('close', stop);
  });
}

const hasBody = (request: FastifyRequest) =>
  request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
