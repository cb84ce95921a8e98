import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { realpath } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { Registry } from 'prom-client';
import { decodePacket, encodeError, encodePacket, ErrorCode, Opcode, type TftpOption } from './codec.js';
import { resolveConfig, type Peer, type ServerConfig, type TftpServerOptions, type TransferRecord } from './config.js';
import { lookupContent, type ContentPlaces } from './lookup.js';
import { TftpMetrics, type TftpStats } from './metrics.js';
import { negotiateOptions } from './negotiate.js';
import { loadPump, startPump, type PumpCounters, type PumpedTransfer, type PumpOutcome } from './pump.js';
import { BURST_RECEIVE_BUFFER_BYTES } from '../net/datagram.js';
import { closeContent, contentSize, readAheadBytes, type Content } from './source.js';

export type { Peer as TftpClient } from './config.js';
export { TFTP_DEFAULTS, type TftpServerOptions, type TransferRecord } from './config.js';

export interface TftpServer {
  address(): { address: string; port: number };
  /** Stops listening, ends every transfer (telling each client), and resolves when all sockets are closed. */
  close(): Promise<void>;
  readonly stats: TftpStats;
}

export async function startTftpServer(options: TftpServerOptions): Promise<TftpServer> {
  const config = resolveConfig(options);
  loadPump();
  const places: ContentPlaces = { resolveVirtual: config.resolveVirtual, files: config.files, rootReal: await realpath(config.root) };
  const server = new LiveryTftpServer(config, places, options.registry ?? new Registry());
  await server.listen();
  return server;
}

/**
 * The request socket and the bookkeeping around transfers: caps, metrics, records, shutdown.
 * Each accepted request is handed to the pump, which runs its DATA/ACK exchange on its own socket.
 */
class LiveryTftpServer implements TftpServer {
  private readonly socket: Socket;
  private readonly transfers = new Set<PumpedTransfer>();
  private readonly pending = new Set<Promise<void>>();
  /** Transfers reserved or running, overall and per client IP; a request holds its slot from RRQ on. */
  private slots = 0;
  private readonly slotsByClient = new Map<string, number>();
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly metrics: TftpMetrics;

  constructor(
    private readonly config: ServerConfig,
    private readonly places: ContentPlaces,
    registry: Registry,
  ) {
    this.metrics = new TftpMetrics(registry, () => this.runningCounters());
    this.socket = createSocket(isIPv6(config.host) ? 'udp6' : 'udp4');
    this.socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
  }

  get stats(): TftpStats {
    return this.metrics.stats;
  }

  private *runningCounters(): Iterable<PumpCounters> {
    for (const transfer of this.transfers) {
      const counters = transfer.counters();
      if (counters) yield counters;
    }
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
        // The kernel caps it at net.core.rmem_max.
        this.socket.setRecvBufferSize(BURST_RECEIVE_BUFFER_BYTES);
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
    const running = [...this.transfers];
    for (const transfer of running) transfer.abort('server shutting down');
    await Promise.all(running.map((t) => t.done));
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
    let started = false;
    try {
      const found = await lookupContent(filename, client, this.places);
      if (!found.ok) {
        this.refuse(client, filename, found.reason, found.code, found.message);
      } else {
        try {
          if (!this.closed) {
            this.run(client, found.file, found.content, mode === 'netascii', options, release, startedAt);
            started = true;
          }
        } finally {
          // The pump holds its own duplicate of the descriptor, so ours is done with either way.
          // Closing a read-only file cannot lose data: a failure is not worth failing the request for.
          closeContent(found.content).catch(() => undefined);
        }
      }
    } catch (err) {
      this.config.logger?.error({ err, client, filename }, 'tftp request failed');
      this.refuse(client, filename, 'internal-error', ErrorCode.NOT_DEFINED, 'internal error');
    } finally {
      if (!started) release();
    }
  }

  /** Negotiates options and hands the transfer to the pump, which from then on owns the slot. */
  private run(client: Peer, file: string, content: Content, netascii: boolean, options: TftpOption[], release: () => void, startedAt: number): void {
    const sendingSince = Date.now();
    const negotiated = negotiateOptions(options, this.config, netascii ? null : contentSize(content));
    const transfer = startPump({
      host: this.config.host,
      peerAddress: client.address,
      peerPort: client.port,
      fd: content.kind === 'file' ? content.handle.fd : -1,
      data: content.kind === 'buffer' ? content.data : null,
      size: contentSize(content),
      netascii,
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      timeoutMs: negotiated.timeoutMs ?? this.config.timeoutMs,
      retries: this.config.retries,
      silenceLimitMs: this.config.maxSilenceMs,
      readAhead: readAheadBytes(negotiated.blksize, negotiated.windowsize),
      oack: negotiated.accepted.length > 0 ? encodePacket({ op: 'oack', options: negotiated.accepted }) : null,
    });
    this.transfers.add(transfer);
    this.metrics.transferStarted();
    this.config.logger?.debug({ client, file, blksize: negotiated.blksize, windowsize: negotiated.windowsize }, 'tftp transfer started');
    void transfer.done.then((outcome) => {
      this.transfers.delete(transfer);
      release();
      this.metrics.transferFinished(outcome);
      this.report(outcome, {
        client,
        file,
        bytes: outcome.bytes,
        sendingSince,
        durationMs: performance.now() - startedAt,
        result: outcome.result,
        blksize: negotiated.blksize,
        windowsize: negotiated.windowsize,
        options: negotiated.requested,
      });
    });
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

  private report(outcome: PumpOutcome, record: TransferRecord): void {
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
