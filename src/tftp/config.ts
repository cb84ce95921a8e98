import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { isAbsolute } from 'node:path';
import { normalizeRequestPath } from './confine.js';
import { MAX_BLKSIZE, MAX_WINDOWSIZE, MIN_BLKSIZE } from './negotiate.js';
import type { TransferResult } from './pump.js';
import { CONFIG_DEFAULTS } from '../config/schema.js';

/** A TFTP client, as its request arrived: always an IP literal and a port. */
export interface Peer {
  address: string;
  port: number;
}

/** What the caller learns about every transfer that started, however it ended. */
export interface TransferRecord {
  client: Peer;
  /** The requested name after normalisation (leading slash dropped). */
  file: string;
  /** Payload bytes the client acknowledged. */
  bytes: number;
  /** When the transfer began, after the request was looked up (a virtual file rendered), in milliseconds since the epoch. */
  sendingSince: number;
  /** From the request's arrival to the transfer's end. */
  durationMs: number;
  result: TransferResult;
  blksize: number;
  windowsize: number;
  /** Options exactly as the client requested them (names lowercased). */
  options: Record<string, string>;
}

export interface TftpServerOptions {
  /** Address to listen on; default 0.0.0.0. Transfer sockets bind to the same address. */
  host?: string;
  /** Default 69; 0 picks a free port (tests). */
  port?: number;
  /** Folder served; nothing outside it (after resolving symlinks) is ever read through a request name. */
  root: string;
  /** Extra read-only files by request name, e.g. { 'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe' }; checked before the root. */
  files?: Record<string, string>;
  /** Per-machine generated files; checked before `files` and the root. Returning null falls through to them. */
  resolveVirtual?: (path: string, client: Peer) => Promise<Buffer | { path: string } | null>;
  /** Largest blksize granted (default: tftp.maxBlksize's, what fits a 1500-byte MTU). */
  maxBlksize?: number;
  /** Largest windowsize granted. */
  maxWindowsize?: number;
  /** Retransmission timeout when the client does not negotiate one; doubles per retry. */
  timeoutMs?: number;
  /** Retransmissions before a transfer is given up (by default about a minute at the default timeout). */
  retries?: number;
  /**
   * Longest a transfer waits for the client's next ACK, however long a timeout the client
   * negotiated (RFC 2349 lets it ask for 255 s, which the backoff would stretch to hours of a
   * held slot). Default: what `timeoutMs` and `retries` give a client that negotiated nothing.
   */
  maxSilenceMs?: number;
  /** Concurrent transfers overall and per client IP. */
  maxTransfers?: number;
  maxTransfersPerClient?: number;
  /** Where the livery_tftp_* metrics go; a private registry when absent. */
  registry?: Registry;
  logger?: Logger;
  /** Called once per transfer that started, however it ended (not for refused requests). */
  onTransfer?: (record: TransferRecord) => void | Promise<void>;
}

const { maxBlksize, maxWindowsize, timeoutMs, retries, maxTransfers, maxTransfersPerClient } = CONFIG_DEFAULTS.tftp;

/** The defaults of the options that are also config keys (tftp.*) are the config schema's. */
export const TFTP_DEFAULTS = {
  host: '0.0.0.0',
  port: 69,
  maxBlksize,
  maxWindowsize,
  timeoutMs,
  retries,
  maxTransfers,
  maxTransfersPerClient,
} as const;

export type ServerConfig = Required<Omit<TftpServerOptions, 'files' | 'resolveVirtual' | 'logger' | 'onTransfer' | 'registry'>> &
  Pick<TftpServerOptions, 'resolveVirtual' | 'logger' | 'onTransfer'> & {
    /** `files` keyed by normalised request name. */
    files: Map<string, string>;
  };

/** Applies defaults and rejects impossible settings up front, so a bad config fails at start, not mid-boot. */
export function resolveConfig(options: TftpServerOptions): ServerConfig {
  // Explicitly undefined options mean "default" too, so they must not overwrite the defaults.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as TftpServerOptions;
  const base = { ...TFTP_DEFAULTS, ...given };
  const c = { ...base, maxSilenceMs: given.maxSilenceMs ?? silentHoldMs(base.timeoutMs, base.retries), files: normalizedFiles(given.files ?? {}) };
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`tftp: ${what}`);
  };
  const isInt = Number.isInteger;
  check(isInt(c.port) && c.port >= 0 && c.port <= 65535, `port must be 0..65535, got ${c.port}`);
  check(isInt(c.maxBlksize) && c.maxBlksize >= MIN_BLKSIZE && c.maxBlksize <= MAX_BLKSIZE, `maxBlksize must be ${MIN_BLKSIZE}..${MAX_BLKSIZE}, got ${c.maxBlksize}`);
  check(isInt(c.maxWindowsize) && c.maxWindowsize >= 1 && c.maxWindowsize <= MAX_WINDOWSIZE, `maxWindowsize must be 1..${MAX_WINDOWSIZE}, got ${c.maxWindowsize}`);
  check(c.timeoutMs > 0, `timeoutMs must be positive, got ${c.timeoutMs}`);
  check(isInt(c.retries) && c.retries >= 0, `retries must be a non-negative integer, got ${c.retries}`);
  check(c.maxSilenceMs > 0, `maxSilenceMs must be positive, got ${c.maxSilenceMs}`);
  check(isInt(c.maxTransfers) && c.maxTransfers >= 1, `maxTransfers must be at least 1, got ${c.maxTransfers}`);
  check(isInt(c.maxTransfersPerClient) && c.maxTransfersPerClient >= 1, `maxTransfersPerClient must be at least 1, got ${c.maxTransfersPerClient}`);
  return c;
}

/** Doublings of the retransmission timeout before it stops growing (MAX_BACKOFF_DOUBLINGS in native/tftp_pump.c). */
const MAX_BACKOFF_DOUBLINGS = 5;

/** How long the pump's own schedule waits on a silent client: the first wait plus every backed-off retry. */
export function silentHoldMs(timeoutMs: number, retries: number): number {
  let total = 0;
  for (let k = 0; k <= retries; k++) total += timeoutMs * 2 ** Math.min(k, MAX_BACKOFF_DOUBLINGS);
  return total;
}

/** Keys are matched against normalised request names, so they are normalised the same way. */
function normalizedFiles(files: Record<string, string>): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, path] of Object.entries(files)) {
    const key = normalizeRequestPath(name);
    if (!key.ok) throw new RangeError(`tftp: files entry "${name}" is not a valid request name (${key.reason})`);
    if (!isAbsolute(path)) throw new RangeError(`tftp: files entry "${name}" must map to an absolute path, got "${path}"`);
    map.set(key.path, path);
  }
  return map;
}
