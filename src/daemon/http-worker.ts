/**
 * A forked HTTP worker's entry (see http-cluster.ts): the HTTP app over its own CMDB
 * connection, listening on the port the primary shares, until the primary says stop or goes away.
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { openCmdbAt } from '../cmdb/index.js';
import type { Config } from '../config/index.js';
import { buildHttpApp } from '../http/app.js';
import { createLogger } from '../log.js';
import { CONFIG_ENV, listen, type HttpServing, type Message } from './http-cluster.js';
import { cmdbTarget } from './database.js';

/** A worker's registry: collects locally, but /metrics shows the whole server (asked of the primary). */
class WorkerRegistry extends Registry {
  private readonly pending = new Map<string, (text: string) => void>();

  constructor() {
    super();
    process.on('message', (m: Message) => {
      if (m.type === 'livery:metrics-reply') {
        this.pending.get(m.id)?.(m.text);
        this.pending.delete(m.id);
      } else if (m.type === 'livery:metrics-collect') {
        void this.getMetricsAsJSON().then((metrics) => process.send?.({ type: 'livery:metrics-part', id: m.id, metrics } satisfies Message));
      }
    });
  }

  override metrics(): Promise<string> {
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the primary did not answer the metrics request'));
      }, 5000);
      this.pending.set(id, (text) => {
        clearTimeout(timer);
        resolve(text);
      });
      process.send!({ type: 'livery:metrics-request', id } satisfies Message);
    });
  }
}

/** A worker process: the HTTP app over its own CMDB connection, until the primary says stop or goes away. */
async function runWorker(config: Config): Promise<void> {
  let served: HttpServing | null = null;
  let stopping = false;
  const logger = createLogger(config.log.level, 'livery-http');
  const cmdb = openCmdbAt(cmdbTarget(config));
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await served?.close();
    cmdb.close();
    process.exit(0);
  };
  // Registered first: a primary that stops (or dies) while this worker is still starting
  // must not leave it running, nor crash it on the closed IPC channel. The primary stops
  // workers with SIGTERM.
  process.on('disconnect', () => void stop());
  cluster.worker!.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_IPC_CHANNEL_CLOSED') void stop();
    else throw err;
  });
  process.on('SIGTERM', () => void stop());
  // Ctrl-C reaches the whole process group; the primary decides when workers stop.
  process.on('SIGINT', () => undefined);
  const registry = new WorkerRegistry();
  collectDefaultMetrics({ register: registry });
  served = await listen(config, logger, await buildHttpApp({ cmdb, config, registry, logger }));
  process.send!({ type: 'livery:listening', url: served.url } satisfies Message);
}

if (cluster.isWorker && process.env[CONFIG_ENV]) {
  await runWorker(JSON.parse(process.env[CONFIG_ENV]) as Config);
}
