import { resolveConfig, type Config } from '../../src/config/index.js';
import { startLivery, type Livery, type StartOptions } from '../../src/daemon/index.js';
import { createLogger } from '../../src/log.js';
import { testDatabase, type TestDatabase } from './test-database.js';
import { tempDir } from './tmp.js';

export interface TestServer {
  livery: Livery;
  url: string;
  /** The bootstrap admin token. */
  token: string;
  dataDir: string;
  config: Config;
  /** The CMDB this livery keeps, from the test's side. */
  database: TestDatabase;
  /** fetch against the server with the admin token (or `token: null` for none). */
  api(path: string, init?: RequestInit & { token?: string | null; json?: unknown }): Promise<Response>;
  stop(): Promise<void>;
}

/** The secret part of an API token, lvy_<12 hex id>_<secret>: the secret itself may hold '_'. */
export const tokenSecret = (token: string) => token.slice('lvy_'.length + 13);

/** fetch against a livery at `url`, with `token` (or another, or `token: null` for none), `json` as the body. */
export function apiClient(url: string, token: string): TestServer['api'] {
  return (path, init = {}) => {
    const headers = new Headers(init.headers);
    const t = init.token === undefined ? token : init.token;
    if (t) headers.set('authorization', `Bearer ${t}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return fetch(url + path, { ...init, headers, body });
  };
}

/**
 * Settles once the boot events of the scripts a livery at `url` served so far are in its CMDB:
 * a script is answered before its event is durable, and any request but a script's, an
 * artifact's, /healthz and /metrics is answered after the events handed over before it
 * (http/app.ts afterBootSteps).
 */
export async function bootEventsWritten(url: string): Promise<void> {
  const res = await fetch(`${url}/boot.ipxe`);
  if (!res.ok) throw new Error(`GET /boot.ipxe: ${res.status}`);
  await res.text();
}

/** Starts a real livery (HTTP on an ephemeral loopback port, TFTP and DHCP off) on a temp data dir (and the run's CMDB engine: see testDatabase). */
export async function startTestServer(overrides: Record<string, unknown> = {}, opts: StartOptions = {}): Promise<TestServer> {
  const dir = tempDir();
  const database = testDatabase(dir.path);
  const config = resolveConfig({
    dataDir: dir.path,
    database: database.config,
    log: { level: 'silent' },
    http: { listen: '127.0.0.1:0' },
    tftp: { enabled: false },
    ...overrides,
  });
  const livery = await startLivery(config, createLogger('silent'), opts);
  const token = livery.bootstrapToken!;
  return {
    livery,
    url: livery.url,
    token,
    dataDir: dir.path,
    config,
    database,
    api: apiClient(livery.url, token),
    async stop() {
      await livery.close();
      dir.cleanup();
    },
  };
}
