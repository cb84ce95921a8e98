import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { startThread } from '../../thread.js';
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

// A storm's replies arrive in bursts of hundreds; the default buffer drops some of them.
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
const SOCKET_THREAD = new URL(import.meta.url.endsWith('.ts') ? './dhcp-socket-thread.ts' : './dhcp-socket-thread.js', import.meta.url);

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
    /** The socket's thread (dhcp-socket-thread.ts): it broadcasts what it is given and posts back every reply. */
    private readonly socket: Worker,
    private readonly serverPort: number,
  ) {
    socket.on('message', (buf: Uint8Array) => this.onReply(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)));
  }

  static async open(opts: { clientPort: number; serverPort: number }): Promise<DhcpHub> {
    const thread = startThread(SOCKET_THREAD, { clientPort: opts.clientPort, receiveBufferBytes: RECEIVE_BUFFER_BYTES });
    const [first] = (await once(thread, 'message')) as ['ready' | { error: string }];
    if (first !== 'ready') {
      await thread.terminate();
      throw new Error(`DHCP client socket on port ${opts.clientPort}: ${first.error}`);
    }
    return new DhcpHub(thread, opts.serverPort);
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
        this.socket.postMessage({ bytes, port: this.serverPort });
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

  async close(): Promise<void> {
    this.socket.postMessage('close');
    await once(this.socket, 'exit');
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
