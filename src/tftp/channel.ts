import { createSocket, type Socket, type SocketType } from 'node:dgram';
import { ipLiteralLookup } from '../net/udp.js';
import { decodePacket, encodeError, ErrorCode, Opcode, type TftpPacket } from './codec.js';

export interface Peer {
  address: string;
  port: number;
}

export interface ChannelHandlers {
  /** A well-formed packet from the transfer's client. */
  packet(packet: TftpPacket): void;
  /** A packet that was dropped, and why (malformed, or from a stranger). */
  dropped(reason: string): void;
  error(err: Error): void;
}

/**
 * The UDP socket of one transfer: its own ephemeral port is the server's transfer ID (RFC 1350).
 * It stays unconnected on purpose, so that a packet from any other address or port still reaches
 * us and can be answered with ERROR 5 instead of being silently eaten by the kernel.
 */
export class TransferChannel {
  private closing = false;
  private readonly closed: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    private readonly client: Peer,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(type: SocketType, host: string, client: Peer): Promise<TransferChannel> {
    return new Promise((resolve, reject) => {
      // Peers are always IP literals taken from rinfo.
      const socket = createSocket({ type, lookup: ipLiteralLookup(type === 'udp6' ? 6 : 4) });
      const failed = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', failed);
      socket.bind({ address: host, port: 0 }, () => {
        socket.off('error', failed);
        resolve(new TransferChannel(socket, client));
      });
    });
  }

  /**
   * Starts delivering packets. Separate from open() because the handlers belong to a transfer
   * that is built once the socket exists; nothing can arrive before our first send anyway.
   */
  attach(handlers: ChannelHandlers): void {
    const { socket, client } = this;
    socket.on('error', (err) => handlers.error(err));
    socket.on('message', (msg, from) => {
      if (from.port !== client.port || from.address !== client.address) {
        handlers.dropped('unknown-tid');
        // Never answer an ERROR with an ERROR: two confused peers would bounce them forever.
        if (msg.length < 2 || msg.readUInt16BE(0) !== Opcode.ERROR) {
          this.sendTo(encodeError(ErrorCode.UNKNOWN_TID, 'unknown transfer ID'), from);
        }
        return;
      }
      const decoded = decodePacket(msg);
      if (decoded.ok) handlers.packet(decoded.packet);
      else handlers.dropped(decoded.reason);
    });
  }

  send(packet: Buffer): void {
    this.sendTo(packet, this.client);
  }

  /**
   * No completion callback: Node would queue a nextTick per packet just to call it. A send that
   * fails is recovered like a lost packet, by retransmission.
   */
  private sendTo(packet: Buffer, peer: Peer): void {
    if (!this.closing) this.socket.send(packet, peer.port, peer.address);
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.socket.close();
    }
    return this.closed;
  }
}
