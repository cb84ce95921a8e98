import { resolveConfig } from '../../src/config/index.js';
import { startLivery, type Livery } from '../../src/daemon/index.js';
import { createLogger } from '../../src/log.js';
import type { TestPostgres } from './postgres.js';

/** Starts a livery node named `name` on `dataDir` and the PostgreSQL database at `databaseUrl`: HTTP on a loopback port, TFTP off, a 1 s heartbeat, dead after 3 s. */
export function startPgNode(pg: TestPostgres, databaseUrl: string, name: string, dataDir: string): Promise<Livery> {
  const config = resolveConfig({
    dataDir,
    database: { url: databaseUrl, passwordFile: pg.passwordFile },
    node: { name, heartbeatSeconds: 1, deadAfterSeconds: 3 },
    log: { level: 'silent' },
    http: { listen: '127.0.0.1:0', workers: 1 },
    tftp: { enabled: false },
  });
  return startLivery(config, createLogger('silent'));
}
