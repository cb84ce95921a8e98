import { mkdirSync, writeFileSync } from 'node:fs';
import { installFleetMetrics } from './fleet-metrics.js';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { sampleTemplateData, TemplateStore } from '../boot/index.js';
import { BlobStore } from '../catalog/blob-store.js';
import { Catalog } from '../catalog/index.js';
import { removeCrashDebris } from '../catalog/gc.js';
import { nodeName, type Config } from '../config/index.js';
import { openCmdbAt, type Cmdb, type SqlCmdb } from '../cmdb/index.js';
import { ensureSecretKey, SecretBox, secretKeyPath } from '../cmdb/secret-box.js';
import { buildHttpApp } from '../http/app.js';
import { RolloutEngine } from '../rollout/engine.js';
import type { RolloutPower } from '../rollout/power.js';
import { bmcRolloutPower } from '../power/rollout-power.js';
import { PowerService } from '../power/service.js';
import type { Logger } from '../log.js';
import { serveHttp } from './http-cluster.js';
import { startDhcpDoor } from './dhcp-door.js';
import { startTftpDoor } from './tftp-door.js';
import { lockDataDir } from './data-lock.js';
import { cmdbTarget } from './database.js';
import { startNodeHeartbeat } from './node-heartbeat.js';
import { markImagesHeldHere, startBlobSync } from './blob-sync.js';
import { startDiscoveredExpiry } from './expire-discovered.js';

export { DataDirLockedError } from './data-lock.js';

export interface Livery {
  /** The engine itself: the daemon is where it is chosen (tests reach its SQLite through it). */
  cmdb: SqlCmdb;
  /** The HTTP base URL the server actually listens on. */
  url: string;
  /** Set only when this start created the first admin token. */
  bootstrapToken: string | null;
  templates: TemplateStore;
  /** The TFTP port actually bound (null when TFTP is off). */
  tftpPort: number | null;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Power control for rollouts; by default the machines' BMCs, as `livery power` uses them. */
  power?: RolloutPower;
  /** How often the rollout engine looks at its rollouts (default 1 s). */
  rolloutTickMs?: number;
}

/**
 * Starts everything `livery serve` runs, from one validated config: the CMDB, HTTP, TFTP,
 * (only when configured) DHCP, and the rollout engine. Closing stops them in reverse order.
 */
export async function startLivery(config: Config, logger: Logger, opts: StartOptions = {}): Promise<Livery> {
  mkdirSync(config.dataDir, { recursive: true });
  const lock = lockDataDir(config.dataDir);
  let cmdb: SqlCmdb;
  try {
    cmdb = openCmdbAt(cmdbTarget(config));
    if (cmdb.migrationBackup) logger.info({ backup: cmdb.migrationBackup }, 'copied the database before migrating its schema');
  } catch (err) {
    lock.release();
    throw err;
  }
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  installFleetMetrics(cmdb, registry);
  const closers: (() => Promise<void> | void)[] = [() => lock.release(), () => cmdb.close()];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const bootstrapToken = ensureAdminToken(cmdb, config.dataDir);
    checkSecretKey(cmdb, config.dataDir, logger);
    const blobs = new BlobStore(join(config.dataDir, 'blobs'));
    const debris = await removeCrashDebris(cmdb, blobs);
    if (debris.blobs + debris.tempFiles > 0) logger.info(debris, 'removed what publishes cut off by a crash left in the blob store');
    // Before the boot door opens, so images whose blobs are here boot at once.
    await markImagesHeldHere(cmdb, blobs, nodeName(config), logger);
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
    const dhcp = await startDhcpDoor({ cmdb, config, registry, logger });
    if (dhcp) closers.push(() => dhcp.close());
    const stopExpiry = startDiscoveredExpiry(cmdb, config, registry, logger);
    if (stopExpiry) closers.push(stopExpiry);
    // One engine, in this process only (HTTP workers write rollout requests to the CMDB, it acts
    // on them), and on one node at a time: the node holding the rollout role runs it.
    const rollouts = new RolloutEngine(cmdb, new Catalog(cmdb, config), opts.power ?? bmcRolloutPower(cmdb, new PowerService(cmdb, config.power, new SecretBox(secretKeyPath(config.dataDir)))), logger, opts.rolloutTickMs);
    closers.push(() => rollouts.stop());
    // Peers fetch blobs from the node's public URL, as machines do: the listen address may be 0.0.0.0.
    const heartbeat = startNodeHeartbeat(cmdb, config, config.http.publicUrl, logger, (lead) => (lead ? rollouts.start() : void rollouts.stop()));
    closers.push(() => heartbeat.stop());
    const blobSync = startBlobSync(cmdb, blobs, config, logger);
    closers.push(() => blobSync.stop());
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
