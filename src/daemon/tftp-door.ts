import { mkdirSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { recordTransfer, tftpVirtualFile, type TemplateStore } from '../boot/index.js';
import { Catalog } from '../catalog/index.js';
import type { Cmdb } from '../cmdb/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { startTftpServer } from '../tftp/index.js';
import { hostPort } from './listen.js';

interface TftpDoorContext {
  cmdb: Cmdb;
  config: Config;
  registry: Registry;
  logger: Logger;
  templates: TemplateStore;
}

/** Starts TFTP (loaders and per-machine virtual files) when enabled; returns its closer. */
export async function startTftpDoor(ctx: TftpDoorContext): Promise<{ close(): Promise<void>; port: number } | null> {
  const { config, cmdb, logger } = ctx;
  if (!config.tftp.enabled) return null;
  mkdirSync(config.tftp.root, { recursive: true });
  const catalog = new Catalog(cmdb, config);
  const { host, port } = hostPort(config.tftp.listen);
  const server = await startTftpServer({
    host,
    port,
    root: config.tftp.root,
    files: config.tftp.loaders,
    // GRUB (the Secure Boot chain) reads kernel and initrd from the server it came from, TFTP here.
    resolveVirtual: async (path) => tftpVirtualFile(path, { ...ctx, artifactPath: (id, file) => catalog.artifact(id, file)?.path ?? null }),
    maxBlksize: config.tftp.maxBlksize,
    maxWindowsize: config.tftp.maxWindowsize,
    timeoutMs: config.tftp.timeoutMs,
    retries: config.tftp.retries,
    maxSilenceMs: config.tftp.maxSilenceMs || undefined,
    maxTransfers: config.tftp.maxTransfers,
    maxTransfersPerClient: config.tftp.maxTransfersPerClient,
    registry: ctx.registry,
    logger,
    onTransfer: (r) => recordTransfer(cmdb, r),
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EACCES') throw new Error(`tftp.listen ${config.tftp.listen}: port ${port} needs root (or CAP_NET_BIND_SERVICE); run as root or use --no-tftp`);
    if (err.code === 'EADDRINUSE') throw new Error(`tftp.listen ${config.tftp.listen}: address in use (another TFTP server?); stop it or use --no-tftp`);
    throw err;
  });
  logger.info({ listen: server.address() }, 'tftp listening');
  return { close: () => server.close(), port: server.address().port };
}
