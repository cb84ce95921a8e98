import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { sampleTemplateData, TemplateStore } from '../boot/index.js';
import { BlobStore } from '../catalog/blob-store.js';
import { Catalog } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import { openCmdb, type Cmdb } from '../cmdb/index.js';
import { ensureSecretKey, SecretBox, secretKeyPath } from '../cmdb/secret-box.js';
import { buildHttpApp } from '../http/app.js';
import type { Logger } from '../log.js';
import { serveHttp } from './http-workers.js';
import { startDhcpDoor, startTftpDoor } from './doors.js';
import { databasePath } from './paths.js';

export interface Livery {
  cmdb: Cmdb;
  /** The HTTP base URL the server actually listens on. */
  url: string;
  /** Set only when this start created the first admin token. */
  bootstrapToken: string | null;
  templates: TemplateStore;
  /** The TFTP port actually bound (null when TFTP is off). */
  tftpPort: number | null;
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
    checkSecretKey(cmdb, config.dataDir, logger);
    // Nothing is being published yet: temp files are debris of a publish cut off by a crash.
    await new BlobStore(join(config.dataDir, 'blobs')).removeStaleTemps(Date.now() + 1);
    const templates = new TemplateStore(config.boot.templatesDir, logger, sampleTemplateData(config));
    const http = await serveHttp({
      config,
      logger,
      registry,
      build: () => buildHttpApp({ cmdb, config, registry, logger, templates, catalog: new Catalog(cmdb, config) }),
    });
    closers.push(() => http.close());
    const url = http.url;
    const tftp = await startTftpDoor({ cmdb, config, registry, logger, templates });
    if (tftp) closers.push(() => tftp.close());
    const dhcp = await startDhcpDoor({ cmdb, config, registry, logger, templates });
    if (dhcp) closers.push(() => dhcp.close());
    return { cmdb, url, bootstrapToken, templates, tftpPort: tftp?.port ?? null, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The key BMC passwords are sealed with: created (mode 0600) at the first start. A key file
 * that was lost and made anew cannot open what the old one sealed: say so at start, naming the
 * file, rather than at the first power action.
 */
function checkSecretKey(cmdb: Cmdb, dataDir: string, logger: Logger): void {
  const path = secretKeyPath(dataDir);
  ensureSecretKey(path);
  const have = new SecretBox(path).keyId();
  const orphaned = cmdb.bmcs.keyIds().filter((id) => id !== have);
  if (orphaned.length > 0) {
    logger.error({ keyFile: path, keyId: have, sealedWith: orphaned }, 'BMC passwords in the CMDB were sealed with another key than the key file holds: restore that key file or set the passwords again');
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
