import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import { openCmdb, type Cmdb } from '../cmdb/index.js';
import { buildHttpApp } from '../http/app.js';
import type { Logger } from '../log.js';
import { hostPort } from './listen.js';
import { databasePath } from './paths.js';

export interface Livery {
  cmdb: Cmdb;
  /** The HTTP base URL the server actually listens on. */
  url: string;
  /** Set only when this start created the first admin token. */
  bootstrapToken: string | null;
  close(): Promise<void>;
}


/**
 * Starts everything `livery serve` runs, from one validated config: the CMDB, HTTP, TFTP and
 * (only when configured) DHCP. Closing stops them in reverse order.
 */
export async function startLivery(config: Config, logger: Logger): Promise<Livery> {
  mkdirSync(config.dataDir, { recursive: true });
  const cmdb = openCmdb(databasePath(config.dataDir));
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const closers: (() => Promise<void> | void)[] = [() => cmdb.close()];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const bootstrapToken = ensureAdminToken(cmdb, config.dataDir);
    const app = await buildHttpApp({ cmdb, config, registry, logger });
    const { host, port } = hostPort(config.http.listen);
    await app.listen({ host, port });
    closers.push(() => app.close());
    const addr = app.server.address();
    const actualPort = typeof addr === 'object' && addr ? addr.port : port;
    const scheme = config.http.tls.cert ? 'https' : 'http';
    const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
    logger.info({ url }, 'http listening');
    return { cmdb, url, bootstrapToken, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A fresh data dir gets one admin token, so the first operator can do anything at all. It is
 * printed once and also written (mode 0600) to <dataDir>/admin.token for `make run` users.
 */
function ensureAdminToken(cmdb: Cmdb, dataDir: string): string | null {
  if (cmdb.tokens.count() > 0) return null;
  const { token } = cmdb.change('livery:bootstrap', 'token.create', 'admin', () => cmdb.tokens.create('bootstrap-admin', 'admin'));
  writeFileSync(join(dataDir, 'admin.token'), token + '\n', { mode: 0o600 });
  return token;
}
