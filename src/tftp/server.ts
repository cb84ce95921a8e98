import { createSocket, type RemoteInfo, type Socket, type SocketType } from 'node:dgram';
import { realpath } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { Registry } from 'prom-client';
import { TransferChannel, type Peer } from './channel.js';
import { decodePacket, encodeError, encodePacket, ErrorCode, Opcode, type TftpOption } from './codec.js';
import { resolveConfig, type ServerConfig, type TftpServerOptions } from './config.js';
import { lookupContent, type ContentPlaces } from './lookup.js';
import { TftpMetrics, type TftpStats } from './metrics.js';
import { negotiateOptions } from './options.js';
import { closeContent, contentSize, readAheadBytes, sourceFor, type Content } from './source.js';
import { Transfer, type TransferOutcome, type TransferResult } from './transfer.js';

export type { Peer as TftpClient } from './channel.js';
export { TFTP_DEFAULTS, type TftpServerOptions } from './config.js';

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

export interface TftpServer {
  address(): { address: string; port: number };
  /** Stops listening, ends every transfer (telling each client), and resolves when all sockets are closed. */
  close(): Promise<void>;
  readonly stats: TftpStats;
}

export async function startTftpServer(options: TftpServerOptions): Promise<TftpServer> {
  const config = resolveConfig(options);
  const places: ContentPlaces = { resolveVirtual: config.resolveVirtual, files: config.files, rootReal: await realpath(config.root) };
  const server = new LiveryTftpServer(config, places, new TftpMetrics(options.registry ?? new Registry()));
  await server.listen();
  return server;
}

/**
 * The request socket and the bookkeeping around transfers: caps, metrics, records, shutdown.
 * Each accepted request gets a Transfer (the protocol) on a TransferChannel (its own socket).
 */
class LiveryTftpServer implements TftpServer {
  private readonly socketType: SocketType;
  private readonly socket: Socket;
  private readonly sessions = new Map<Transfer, TransferChannel>();
  private readonly pending = new Set<Promise<void>>();
  /** Transfers reserved or running, overall and per client IP; a request holds its slot from RRQ on. */
  private slots = 0;
  private readonly slotsByClient = new Map<string, number>();
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly config: ServerConfig,
    private readonly places: ContentPlaces,
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
      const failed = (err: Error) => {
        this.socket.close();
        reject(err);
      };
      this.socket.once('error', failed);
      this.socket.bind({ address: this.config.host, port: this.config.port }, () => {
        this.socket.off('error', failed);
        this.socket.on('error', (err) => this.config.logger?.error({ err }, 'tftp socket error'));
        resolve();
      });
    });
  }

  address(): { address: string; port: number } {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(resolve));
    await Promise.all(this.pending); // Requests still being looked up see `closed` and back out.
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
    const found = await lookupContent(filename, client, this.places);
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

  /** Negotiates options and runs the transfer; from here on nothing awaits, so nothing can interleave. */
  private run(client: Peer, opened: Opened, netascii: boolean, options: TftpOption[], release: () => void, startedAt: number): void {
    const { file, content, channel } = opened;
    const negotiated = negotiateOptions(options, this.config, netascii ? null : contentSize(content));
    const transfer: Transfer = new Transfer(
      sourceFor(content, netascii, readAheadBytes(negotiated.blksize, negotiated.windowsize)),
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
