import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { hostPort } from './listen.js';
import { httpProcessCount } from './processes.js';

/**
 * HTTP from several processes. One Node process serves files from one core, and a boot storm's
 * kernels and root filesystems need more than that, so `livery serve` forks `http.workers` processes (0 = one per core) with node:cluster;
 * each opens its own CMDB connection (SQLite WAL is multi-process safe), builds the same fastify
 * app and listens on the shared port. DHCP, TFTP and everything else stay in the primary.
 *
 * Forking needs the compiled worker entry (dist/daemon/http-worker.js); under a TypeScript
 * loader (vitest) HTTP simply runs in-process, as it also does with `http.workers = 1`.
 */
export interface HttpServing {
  /** The base URL the server actually listens on. */
  url: string;
  /** How many processes serve HTTP (1 = this one). */
  processes: number;
  close(): Promise<void>;
}

const COMPILED = import.meta.url.endsWith('.js');
const WORKER_ENTRY = fileURLToPath(new URL('./http-worker.js', import.meta.url));
/** The config a forked worker serves, as JSON in its environment. */
export const CONFIG_ENV = 'LIVERY_HTTP_WORKER_CONFIG';
// Shutdown: connections still open after CLOSE_GRACE_MS are cut; a worker that has not
// exited after STOP_GRACE_MS is killed.
const CLOSE_GRACE_MS = 1000;
const STOP_GRACE_MS = 3000;

/** One registry's metrics as getMetricsAsJSON gives them: what crosses the IPC channel. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
// A worker that dies is replaced, unless workers keep dying: then the primary stops trying.
const RESTARTS_PER_MINUTE = 5;

/** What the primary and its workers say to each other over the cluster's IPC channel. */
export type Message =
  | { type: 'livery:listening'; url: string }
  | { type: 'livery:metrics-request'; id: string }
  | { type: 'livery:metrics-reply'; id: string; text: string }
  | { type: 'livery:metrics-collect'; id: string }
  | { type: 'livery:metrics-part'; id: string; metrics: MetricsJson };

/** Serves HTTP as configured: in this process, or from forked workers on the same port. */
export async function serveHttp(opts: {
  config: Config;
  logger: Logger;
  registry: Registry;
  /** Builds the app for the in-process case (workers build their own from the config). */
  build: () => Promise<FastifyInstance>;
}): Promise<HttpServing> {
  const processes = httpProcessCount(opts.config.http.workers);
  if (processes <= 1 || !COMPILED || cluster.isWorker) return listen(opts.config, opts.logger, await opts.build());
  return startWorkers(opts.config, opts.logger, opts.registry, processes);
}

/** Listens on http.listen; with port 0 the real port becomes part of publicUrl, as machines need it. */
export async function listen(config: Config, logger: Logger, app: FastifyInstance): Promise<HttpServing> {
  const { host, port } = hostPort(config.http.listen);
  await app.listen({ host, port });
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const scheme = config.http.tls.cert ? 'https' : 'http';
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  if (config.http.publicUrl.endsWith(':0')) config.http.publicUrl = url;
  logger.info({ url, pid: process.pid }, 'http listening');
  const close = async () => {
    const force = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
    await app.close();
    clearTimeout(force);
  };
  return { url, processes: 1, close };
}

async function startWorkers(config: Config, logger: Logger, registry: Registry, processes: number): Promise<HttpServing> {
  cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], execArgv: [] });
  const workers = new Set<Worker>();
  const deaths: number[] = [];
  let closing = false;

  const fork = () =>
    new Promise<string>((resolve, reject) => {
      const worker = cluster.fork({ [CONFIG_ENV]: JSON.stringify(config) });
      let listening = false;
      workers.add(worker);
      worker.on('message', (m: Message) => {
        if (m.type === 'livery:listening') {
          listening = true;
          resolve(m.url);
        } else if (m.type === 'livery:metrics-request') void answerMetrics(worker, m.id);
      });
      worker.once('exit', (code, signal) => {
        workers.delete(worker);
        reject(new Error(`http worker ${worker.process.pid} exited (${signal ?? code}) before listening`));
        // One that never got going failed startup (reported above); only running ones are replaced.
        if (closing || !listening) return;
        const now = Date.now();
        deaths.push(now);
        while (deaths[0]! < now - 60_000) deaths.shift();
        if (deaths.length > RESTARTS_PER_MINUTE) {
          logger.fatal({ pid: worker.process.pid, code, signal }, 'http workers keep dying; not replacing them');
          return;
        }
        logger.error({ pid: worker.process.pid, code, signal }, 'http worker died; starting a new one');
        fork().catch((err: Error) => closing || logger.error({ err }, 'replacement http worker failed'));
      });
    });

  // The primary answers /metrics for whichever worker was asked: its own metrics (DHCP, TFTP,
  // process) plus every worker's, summed by prom-client's cluster aggregator.
  const answerMetrics = async (asker: Worker, id: string) => {
    const parts = await Promise.all([registry.getMetricsAsJSON(), ...[...workers].map((w) => collectFrom(w))]);
    const text = await AggregatorRegistry.aggregate(parts.filter((p) => p.length > 0)).metrics();
    if (asker.isConnected()) asker.send({ type: 'livery:metrics-reply', id, text } satisfies Message);
  };

  const close = async () => {
    closing = true;
    await Promise.all(
      [...workers].map(
        (w) =>
          new Promise<void>((done) => {
            if (w.isDead()) return done();
            const kill = setTimeout(() => w.process.kill('SIGKILL'), STOP_GRACE_MS);
            w.once('exit', () => {
              clearTimeout(kill);
              done();
            });
            // A signal, not an IPC message: a worker still loading has no message handler yet
            // (and SIGTERM's default action ends it), a running one stops gracefully.
            w.process.kill('SIGTERM');
          }),
      ),
    );
  };

  try {
    const urls = await Promise.all(Array.from({ length: processes }, fork));
    const url = urls[0]!;
    if (config.http.publicUrl.endsWith(':0')) config.http.publicUrl = url;
    logger.info({ url, processes }, 'http workers listening');
    return { url, processes, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** One worker's own metrics as JSON; empty if it does not answer in time (it may be dying). */
function collectFrom(worker: Worker): Promise<MetricsJson> {
  return new Promise((resolve) => {
    if (!worker.isConnected()) return resolve([]);
    const id = randomUUID();
    const timer = setTimeout(() => finish([]), 2000);
    const onMessage = (m: Message) => {
      if (m.type === 'livery:metrics-part' && m.id === id) finish(m.metrics);
    };
    const finish = (metrics: MetricsJson) => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve(metrics);
    };
    worker.on('message', onMessage);
    worker.send({ type: 'livery:metrics-collect', id } satisfies Message);
  });
}
