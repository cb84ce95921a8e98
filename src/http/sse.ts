import type { FastifyReply } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { LivEvent } from '../cmdb/types.js';
import type { EventFeed } from './event-feed.js';

/** What may wait in memory for one event stream's client: a few thousand events. */
export const SSE_MAX_BUFFERED_BYTES = 1024 * 1024;

const CUT_METRIC = 'livery_sse_streams_cut_total';

/** The one counter of cut streams, shared by every stream route (the API's and the console's). */
export function sseCutCounter(registry: Registry): Counter<'reason'> {
  return (
    (registry.getSingleMetric(CUT_METRIC) as Counter<'reason'> | undefined) ??
    new Counter({
      name: CUT_METRIC,
      help:
        'Event streams closed while their client was not reading: stalled (nothing drained for http.idleTimeoutMs) ' +
        `or buffer (more than ${SSE_MAX_BUFFERED_BYTES} bytes waiting)`,
      labelNames: ['reason'],
      registers: [registry],
    })
  );
}

/**
 * Hijacks the reply into a Server-Sent Events stream of the event feed from `after` (live when
 * null). `frames` turns one event into the SSE text to send (none: skip it), so the API streams
 * JSON and the console streams HTML through the same backpressure and keepalive.
 */
export function streamEvents(reply: FastifyReply, feed: EventFeed, registry: Registry, after: number | null, frames: (e: LivEvent) => string | null): void {
  const cut = sseCutCounter(registry);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': livery events\n\n');
  // The feed stops sending once a write reports a full buffer, so this bound only catches
  // what one page of outsized events could add; a client that stops reading is cut by the
  // HTTP idle timeout (no bytes moving), counted as stalled below.
  let waitingForDrain = false;
  const write = (text: string): boolean => {
    if (res.destroyed) return false;
    const room = res.write(text);
    if (res.writableLength > SSE_MAX_BUFFERED_BYTES) {
      cut.inc({ reason: 'buffer' });
      res.destroy();
      return false;
    }
    waitingForDrain ||= !room;
    return room;
  };
  const unsubscribe = feed.subscribe(
    {
      send: (e) => {
        const text = frames(e);
        return text === null ? true : write(text);
      },
      drained: () =>
        new Promise<void>((resolve) => {
          if (res.destroyed) return resolve();
          const done = () => {
            // On 'close' the flag stays set: the close handler counts a stream cut while stalled.
            if (!res.destroyed) waitingForDrain = false;
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        }),
    },
    after,
  );
  // A comment every 15 s keeps proxies from closing an idle stream.
  const keepalive = setInterval(() => write(': keepalive\n\n'), 15_000);
  res.once('close', () => {
    if (waitingForDrain && !res.writableFinished) cut.inc({ reason: 'stalled' });
    clearInterval(keepalive);
    unsubscribe();
  });
}

/** One SSE message: every line of the data gets its own `data:` field. */
export const sseFrame = (event: string, data: string, id?: number): string =>
  `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\n${data
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
