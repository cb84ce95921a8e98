import { createSocket, type RemoteInfo, type Socket, type SocketType } from 'node:dgram';
import { realpath } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { isAbsolute } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { TransferChannel, type Peer } from './channel.js';
import { decodePacket, encodeError, encodePacket, ErrorCode, Opcode, type TftpOption } from './codec.js';
import { normalizeRequestPath, resolveUnderRoot } from './confine.js';
import { TftpMetrics, type TftpStats } from './metrics.js';
import { MAX_BLKSIZE, MAX_WINDOWSIZE, MIN_BLKSIZE, negotiateOptions } from './options.js';
import { closeContent, contentSize, openRegularFile, sourceFor, type Content } from './source.js';
import { Transfer, type TransferOutcome, type TransferResult } from './transfer.js';

export type { Peer as TftpClient } from './channel.js';

/** What the caller learns about every transfer that started, however it ended. */
export interface TransferRecord {
  client: Peer;
  /** The requested name after normalisation (leading slash dropped). */
  file: string;
  /** Payload bytes the client acknowledged. */
  bytes: number;
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
  resolveVirtual?: (path: string, client: Peer) => Promise<Buffer | null>;
  /** Largest blksize granted (default 1468, what fits a 1500-byte MTU). */
  maxBlksize?: number;
  /** Largest windowsize granted (default 64). */
  maxWindowsize?: number;
  /** Retransmission timeout when the client does not negotiate one (default 1000 ms). */
  timeoutMs?: number;
  /** Retransmissions before a transfer is given up (default 5). */
  retries?: number;
  /** Concurrent transfers overall (default 512) and per client IP (default 8). */
  maxTransfers?: number;
  maxTransfersPerClient?: number;
  registry?: Registry;
  logger?: Logger;
  onTransfer?: (record: TransferRecord) => void | Promise<void>;
}

export interface TftpServer {
  address(): { address: string; port: number };
  /** Stops listening, ends every transfer (telling each client), and resolves when all sockets are closed. */
  close(): Promise<void>;
  readonly stats: TftpStats;
}

export const TFTP_DEFAULTS = {
  host: '0.0.0.0',
  port: 69,
  maxBlksize: 1468,
  maxWindowsize: 64,
  timeoutMs: 1000,
  retries: 5,
  maxTransfers: 512,
  maxTransfersPerClient: 8,
} as const;

type Config = Required<Omit<TftpServerOptions, 'resolveVirtual' | 'logger' | 'onTransfer' | 'registry'>> &
  Pick<TftpServerOptions, 'resolveVirtual' | 'logger' | 'onTransfer'>;

type Lookup = { ok: true; file: string; content: Content } | { ok: false; reason: string; code: number; message: string };

const READ_AHEAD_MIN = 64 * 1024;
const READ_AHEAD_MAX = 1024 * 1024;

export async function startTftpServer(options: TftpServerOptions): Promise<TftpServer> {
  // Explicitly undefined options mean "default" too, so they must not overwrite the defaults.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as TftpServerOptions;
  const config = validated({ ...TFTP_DEFAULTS, files: {}, ...given });
  const rootReal = await realpath(config.root);
  const server = new LiveryTftpServer(config, rootReal, normalizedFiles(config.files), new TftpMetrics(options.registry ?? new Registry()));
  await server.listen();
  return server;
}

class LiveryTftpServer implements TftpServer {
  private readonly socketType: SocketType;
  private readonly socket: Socket;
  private readonly sessions = new Map<Transfer, TransferChannel>();
  private readonly pending = new Set<Promise<void>>();
  /** Transfers reserved or running, overall and per client IP; a request holds its slot from RRQ on. */
  private slots = 0;
  private readonly slotsByClient = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly rootReal: string,
    private readonly files: Map<string, string>,
    private readonly metrics: TftpMetrics,
  ) {
    this.socketType = isIPv6(config.host) ? 'udp6' : 'udp4';
    this.socket = createSocket(this.socketType);
    this.socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
  }

  get stats(): TftpStats {
    return this.metrics.stats;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ address: this.config.host, port: this.config.port }, () => {
        this.socket.off('error', reject);
        this.socket.on('error', (err) => this.config.logger?.error({ err }, 'tftp socket error'));
        resolve();
      });
    });
  }

  address(): { address: string; port: number } {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(resolve));
    await Promise.all(this.pending);
    const channels = [...this.sessions.values()];
    for (const transfer of [...this.sessions.keys()]) transfer.abort('server shutting down');
    await Promise.all(channels.map((c) => c.close()));
  }

  private onRequest(msg: Buffer, rinfo: RemoteInfo): void {
    const client = { address: rinfo.address, port: rinfo.port };
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      this.metrics.malformed(decoded.reason);
      if (decoded.opcode === Opcode.RRQ || decoded.opcode === Opcode.WRQ) {
        this.reply(client, ErrorCode.ILLEGAL_OPERATION, 'malformed request');
      }
      return;
    }
    const packet = decoded.packet;
    if (packet.op === 'wrq') {
      this.refuse(client, packet.filename, 'write-request', ErrorCode.ACCESS_VIOLATION, 'write requests are not accepted');
    } else if (packet.op === 'rrq') {
      const handling = this.serveRead(client, packet.filename, packet.mode.toLowerCase(), packet.options);
      this.pending.add(handling);
      void handling.finally(() => this.pending.delete(handling));
    } else {
      this.metrics.malformed('unexpected-opcode');
    }
  }

  private async serveRead(client: Peer, filename: string, mode: string, options: TftpOption[]): Promise<void> {
    if (mode !== 'octet' && mode !== 'netascii') {
      this.refuse(client, filename, 'unsupported-mode', ErrorCode.ILLEGAL_OPERATION, `mode ${mode} is not supported`);
      return;
    }
    if (this.slots >= this.config.maxTransfers) {
      this.refuse(client, filename, 'busy', ErrorCode.NOT_DEFINED, 'server busy');
      return;
    }
    if ((this.slotsByClient.get(client.address) ?? 0) >= this.config.maxTransfersPerClient) {
      this.refuse(client, filename, 'busy-client', ErrorCode.NOT_DEFINED, 'server busy');
      return;
    }
    const release = this.reserveSlot(client.address);
    const startedAt = performance.now();
    let opened: Opened | null;
    try {
      opened = await this.open(filename, client);
    } catch (err) {
      release();
      this.config.logger?.error({ err, client, filename }, 'tftp request failed');
      this.refuse(client, filename, 'internal-error', ErrorCode.NOT_DEFINED, 'internal error');
      return;
    }
    if (!opened) {
      release();
    } else if (this.closed) {
      release();
      await Promise.all([opened.channel.close(), closeContent(opened.content)]);
    } else {
      this.run(client, opened, mode === 'netascii', options, release, startedAt);
    }
  }

  /** Finds the content and opens the transfer socket, or refuses the request and returns null. */
  private async open(filename: string, client: Peer): Promise<Opened | null> {
    const found = await this.lookup(filename, client);
    if (!found.ok) {
      this.refuse(client, filename, found.reason, found.code, found.message);
      return null;
    }
    try {
      const channel = await TransferChannel.open(this.socketType, this.config.host, client);
      return { file: found.file, content: found.content, channel };
    } catch (err) {
      await closeContent(found.content);
      throw err;
    }
  }

  /** Lookup order: virtual files, then the configured `files`, then the root. */
  private async lookup(filename: string, client: Peer): Promise<Lookup> {
    const name = normalizeRequestPath(filename);
    if (!name.ok) return refusal(name.reason);
    const path = name.path;
    const virtual = await this.config.resolveVirtual?.(path, client);
    if (virtual) return { ok: true, file: path, content: { kind: 'buffer', data: virtual } };
    const mapped = this.files.get(path);
    const target = mapped !== undefined ? { ok: true as const, path: mapped } : await resolveUnderRoot(this.rootReal, path);
    if (!target.ok) return refusal(target.reason);
    const file = await openRegularFile(target.path);
    return file.ok ? { ok: true, file: path, content: file.content } : refusal(file.reason);
  }

  /** Negotiates options and runs the transfer; from here on nothing awaits, so nothing can interleave. */
  private run(client: Peer, opened: Opened, netascii: boolean, options: TftpOption[], release: () => void, startedAt: number): void {
    const { file, content, channel } = opened;
    const negotiated = negotiateOptions(options, this.config, netascii ? null : contentSize(content));
    const readAhead = Math.min(Math.max(negotiated.blksize * negotiated.windowsize, READ_AHEAD_MIN), READ_AHEAD_MAX);
    const transfer: Transfer = new Transfer(
      sourceFor(content, netascii, readAhead),
      {
        blksize: negotiated.blksize,
        windowsize: negotiated.windowsize,
        timeoutMs: negotiated.timeoutMs ?? this.config.timeoutMs,
        retries: this.config.retries,
        oack: negotiated.accepted.length > 0 ? encodePacket({ op: 'oack', options: negotiated.accepted }) : null,
      },
      {
        send: (packet, payloadBytes, retransmission) => {
          channel.send(packet);
          this.metrics.packetSent(payloadBytes, retransmission);
        },
        finished: (outcome) => {
          this.sessions.delete(transfer);
          release();
          void channel.close();
          this.metrics.transferFinished(outcome.result);
          this.report(outcome, {
            client,
            file,
            bytes: outcome.bytes,
            durationMs: performance.now() - startedAt,
            result: outcome.result,
            blksize: negotiated.blksize,
            windowsize: negotiated.windowsize,
            options: negotiated.requested,
          });
        },
      },
    );
    channel.attach({
      packet: (packet) => {
        if (packet.op === 'ack') transfer.onAck(packet.block);
        else if (packet.op === 'error') transfer.onClientError(packet.code, packet.message);
        else this.metrics.malformed('unexpected-opcode');
      },
      dropped: (reason) => this.metrics.malformed(reason),
      error: (err) => transfer.abort(`socket error: ${err.message}`),
    });
    this.sessions.set(transfer, channel);
    this.metrics.transferStarted();
    this.config.logger?.debug({ client, file, blksize: negotiated.blksize, windowsize: negotiated.windowsize }, 'tftp transfer started');
    transfer.start();
  }

  private reserveSlot(address: string): () => void {
    this.slots++;
    this.slotsByClient.set(address, (this.slotsByClient.get(address) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.slots--;
      const left = this.slotsByClient.get(address)! - 1;
      if (left === 0) this.slotsByClient.delete(address);
      else this.slotsByClient.set(address, left);
    };
  }

  private refuse(client: Peer, filename: string, reason: string, code: number, message: string): void {
    this.metrics.refused(reason);
    this.config.logger?.info({ client, filename, reason }, 'tftp request refused');
    this.reply(client, code, message);
  }

  private reply(client: Peer, code: number, message: string): void {
    if (!this.closed) this.socket.send(encodeError(code, message), client.port, client.address);
  }

  private report(outcome: TransferOutcome, record: TransferRecord): void {
    const failed = record.result === 'timeout' || record.result === 'error';
    const log = { client: record.client, file: record.file, result: record.result, bytes: record.bytes, durationMs: Math.round(record.durationMs), detail: outcome.detail };
    if (failed) this.config.logger?.warn(log, 'tftp transfer failed');
    else this.config.logger?.info(log, 'tftp transfer finished');
    try {
      void Promise.resolve(this.config.onTransfer?.(record)).catch((err: unknown) => this.config.logger?.error({ err }, 'tftp onTransfer failed'));
    } catch (err) {
      this.config.logger?.error({ err }, 'tftp onTransfer failed');
    }
  }
}

interface Opened {
  file: string;
  content: Content;
  channel: TransferChannel;
}

function refusal(reason: string): Lookup {
  return reason === 'not-found' || reason === 'empty'
    ? { ok: false, reason, code: ErrorCode.FILE_NOT_FOUND, message: 'file not found' }
    : { ok: false, reason, code: ErrorCode.ACCESS_VIOLATION, message: 'access violation' };
}

function validated(config: Config): Config {
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`tftp: ${what}`);
  };
  const isInt = Number.isInteger;
  check(isInt(config.port) && config.port >= 0 && config.port <= 65535, `port must be 0..65535, got ${config.port}`);
  check(isInt(config.maxBlksize) && config.maxBlksize >= MIN_BLKSIZE && config.maxBlksize <= MAX_BLKSIZE, `maxBlksize must be ${MIN_BLKSIZE}..${MAX_BLKSIZE}`);
  check(isInt(config.maxWindowsize) && config.maxWindowsize >= 1 && config.maxWindowsize <= MAX_WINDOWSIZE, `maxWindowsize must be 1..${MAX_WINDOWSIZE}`);
  check(config.timeoutMs > 0, 'timeoutMs must be positive');
  check(isInt(config.retries) && config.retries >= 0, 'retries must be a non-negative integer');
  check(isInt(config.maxTransfers) && config.maxTransfers >= 1, 'maxTransfers must be at least 1');
  check(isInt(config.maxTransfersPerClient) && config.maxTransfersPerClient >= 1, 'maxTransfersPerClient must be at least 1');
  return config;
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
