import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { BootOp, decodeDhcp, encodeDhcp, type DhcpPacket, type DhcpPacketInit } from '../../dhcp/wire/codec.js';

interface Waiter {
  accept(reply: DhcpPacket): boolean;
  done(reply: DhcpPacket): void;
}

export interface DhcpHubStats {
  sent: number;
  retransmissions: number;
  /** Replies nobody was waiting for: answers to a retransmission already answered, or strays. */
  unmatched: number;
  malformed: number;
}

const BROADCAST = '255.255.255.255';
// A storm's replies arrive in bursts of hundreds; the default buffer drops some of them.
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * The DHCP side of every virtual client at once. Replies to clients without an address are
 * broadcast to 255.255.255.255:68, so one socket bound to 0.0.0.0:68 hears all of them and
 * hands each to the exchange waiting for its (xid, chaddr).
 */
export class DhcpHub {
  readonly stats: DhcpHubStats = { sent: 0, retransmissions: 0, unmatched: 0, malformed: 0 };
  private readonly waiters = new Map<string, Waiter>();
  private xid = randomInt(0, 2 ** 32);

  private constructor(
    private readonly socket: Socket,
    private readonly serverPort: number,
  ) {
    socket.on('message', (buf) => this.onReply(buf));
    // A failed send is a lost packet; the retransmission timer recovers it.
    socket.on('error', () => undefined);
  }

  static async open(opts: { clientPort: number; serverPort: number }): Promise<DhcpHub> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(opts.clientPort, '0.0.0.0', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.setBroadcast(true);
    socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
    return new DhcpHub(socket, opts.serverPort);
  }

  /** A transaction id no other exchange of this hub is using. */
  nextXid(): number {
    this.xid = (this.xid + 1) >>> 0;
    return this.xid;
  }

  /**
   * Broadcasts `packet` and waits for a reply with its xid and chaddr that `accept` takes,
   * retransmitting after each of `waitsMs`, each moved by up to ±`jitterMs` at random as RFC
   * 2131 §4.1 asks: a rack that retransmits in step floods the server in step. Resolves null
   * when every wait ran out.
   */
  exchange(packet: DhcpPacketInit, accept: (reply: DhcpPacket) => boolean, waits: { waitsMs: number[]; jitterMs: number }, signal: AbortSignal): Promise<DhcpPacket | null> {
    const key = waiterKey(packet.xid, packet.chaddr);
    if (this.waiters.has(key)) throw new Error(`two exchanges at once for ${key}`);
    const bytes = encodeDhcp(packet);
    return new Promise((resolve, reject) => {
      let tries = 0;
      let timer: NodeJS.Timeout | undefined;
      const end = () => {
        clearTimeout(timer);
        this.waiters.delete(key);
        signal.removeEventListener('abort', aborted);
      };
      const aborted = () => {
        end();
        reject(signal.reason as Error);
      };
      const transmit = () => {
        if (tries === waits.waitsMs.length) {
          end();
          resolve(null);
          return;
        }
        if (tries > 0) this.stats.retransmissions++;
        this.stats.sent++;
        this.socket.send(bytes, this.serverPort, BROADCAST);
        timer = setTimeout(transmit, waits.waitsMs[tries++]! + (Math.random() * 2 - 1) * waits.jitterMs);
      };
      if (signal.aborted) return reject(signal.reason as Error);
      signal.addEventListener('abort', aborted, { once: true });
      this.waiters.set(key, {
        accept,
        done: (reply) => {
          end();
          resolve(reply);
        },
      });
      transmit();
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private onReply(buf: Buffer): void {
    const decoded = decodeDhcp(buf);
    if (!decoded.ok) {
      this.stats.malformed++;
      return;
    }
    const reply = decoded.packet;
    const waiter = reply.op === BootOp.REPLY ? this.waiters.get(waiterKey(reply.xid, reply.chaddr)) : undefined;
    if (waiter?.accept(reply)) waiter.done(reply);
    else this.stats.unmatched++;
  }
}

function waiterKey(xid: number, chaddr: Uint8Array): string {
  return `${xid}/${Buffer.from(chaddr.subarray(0, 6)).toString('hex')}`;
}
