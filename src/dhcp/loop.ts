import type { Machine } from '../cmdb/index.js';
import type { Logger } from '../log.js';
import { cidrContains, parseIpv4, type Cidr } from '../net/ipv4.js';
import type { DatagramSocket } from '../net/datagram.js';
import { Backlog } from './backlog.js';
import type { CmdbOutage } from './cmdb-outage.js';
import type { DhcpBootPath } from './contract.js';
import type { LeaseBooks } from './lease-book.js';
import { clientKey, type LoadBalance } from './load-balance.js';
import type { DhcpMetrics } from './metrics.js';
import type { Outbox } from './outbox.js';
import type { RateLimiter } from './ratelimit.js';
import type { Peer } from './reply-address.js';
import { BootOp, decodeDhcp, type DhcpPacket } from './wire/codec.js';
import { DhcpMessageType, messageTypeName } from './wire/options.js';

/** Which socket a packet came in on: port 67, or proxyDHCP's 4011. */
export type Via = 'main' | 'proxy-4011';

/** One client packet being answered: who sent it, from where, and the machine it comes from (null: unknown MAC). */
export interface Client {
  p: DhcpPacket;
  /** The DHCP message type (option 53). */
  type: number;
  machine: Machine | null;
  socket: DatagramSocket;
  /** Where the datagram came from (a 4011 REQUEST is answered there; a RELEASE must come from its address). */
  from: Peer;
  via: Via;
}

/** How a mode (full or proxy) answers a client; what it produces goes to the outbox. */
export interface Mode {
  answer(c: Client, now: number): void;
  /** The lease books were read back from the CMDB (after a failed commit): rebuild what was counted from them. */
  reloaded(): void;
}

/** A decoded client packet waiting in the backlog: when it was read, and where it came in. */
interface Waiting {
  p: DhcpPacket;
  type: number;
  discover: boolean;
  at: number;
  from: Peer;
  socket: DatagramSocket;
  via: Via;
}

const ZERO = '0.0.0.0';
/**
 * Longest stretch spent answering before the loop reads the socket again. libuv reads up to
 * 32 datagrams per pass, so short stretches keep the kernel's queue short and the backlog's
 * read times (which decide what is stale) close to the arrival times.
 */
const SLICE_MS = 1;

/**
 * The DHCP server's read loop. Each packet is decoded as it is read and waits in the backlog
 * (see Backlog for the order under overload); answering one: rate limit → the mode's answer
 * (boot plan, address, reply). What a stretch of answers produced is committed as one batch
 * (see Outbox), and the loop yields to reading between stretches.
 */
export class ReadLoop {
  private readonly backlog: Backlog<Waiting>;
  private answering = false;
  private stopped = false;

  constructor(
    private readonly mode: Mode,
    private readonly outbox: Outbox,
    private readonly boot: Pick<DhcpBootPath, 'machine'>,
    private readonly books: LeaseBooks,
    private readonly limiter: RateLimiter,
    /** Which clients are this node's when others serve the segment too (dhcp.peers). */
    private readonly balance: LoadBalance,
    private readonly metrics: DhcpMetrics,
    private readonly logger: Logger,
    private readonly outage: CmdbOutage,
    private readonly settings: {
      maxWaitMs: number;
      /** The server port: relays send from it, clients from 68. */
      serverPort: number;
      /** Where relay agents may send from besides their giaddr (dhcp.relaySources). */
      relaySources: Cidr[];
    },
  ) {
    this.backlog = new Backlog(settings.maxWaitMs);
  }

  /** Reading is cheap and comes first: a packet is decoded, counted and queued; answering waits its turn. */
  onPacket(buf: Buffer, from: Peer, socket: DatagramSocket, via: Via): void {
    if (this.stopped) return;
    const decoded = decodeDhcp(buf);
    if (!decoded.ok) {
      this.metrics.malformed.inc({ kind: decoded.error.kind });
      return;
    }
    const p = decoded.packet;
    if (p.op !== BootOp.REQUEST || !p.mac) return this.outbox.drop('not-a-client-request');
    const type = p.options.messageType;
    if (type === undefined) return this.outbox.drop('bootp-without-dhcp');
    this.metrics.received.inc({ type: messageTypeName(type) });
    if (p.giaddr !== ZERO) {
      const untrusted = this.untrustedRelay(p.giaddr, from);
      if (untrusted) return this.outbox.drop(untrusted);
    }
    // A client that names a server has chosen it: the mode answers or drops it by that name.
    if (p.options.serverId === undefined && !this.balance.serves(clientKey(p))) return this.outbox.drop('peer-node-client');
    this.backlog.push({ p, type, discover: type === DhcpMessageType.DISCOVER, at: Date.now(), from, socket, via });
    if (!this.answering) {
      this.answering = true;
      setImmediate(() => this.answerSome());
    }
  }

  /**
   * Stops reading and answering (what waits in the backlog is left for its client to send
   * again), commits what is pending and waits until every ACK held for the disk has gone out.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.outbox.settle();
  }

  /** Answers from the backlog for one short stretch, sends and commits what that produced, and yields to reading. */
  private answerSome(): void {
    if (this.stopped) return;
    const until = performance.now() + SLICE_MS;
    const now = Date.now();
    const stale = () => this.outbox.drop('stale');
    do {
      const w = this.backlog.next(now, stale);
      if (!w) break;
      this.answer(w, now);
    } while (performance.now() < until);
    this.outbox.flush();
    if (this.backlog.size > 0) setImmediate(() => this.answerSome());
    else this.answering = false;
  }

  private answer(w: Waiting, now: number): void {
    const { p } = w;
    try {
      // One lookup per packet: the limiter needs to know whether the MAC is known, the mode needs the machine.
      const machine = this.boot.machine(p.mac!);
      const verdict = this.limiter.allow(p.mac!, now, machine !== null);
      if (verdict !== 'ok') return this.outbox.drop(`rate-limit-${verdict}`);
      this.books.refresh();
      this.mode.answer({ p, type: w.type, machine, socket: w.socket, from: w.from, via: w.via }, now);
    } catch (err) {
      // A packet must never take the server down; count it and carry on. Its client sends again.
      if (this.outage.failed(err)) return this.outbox.drop('cmdb-unavailable');
      this.outbox.drop('handler-error');
      this.logger.error({ err }, 'dhcp handler error');
    }
  }

  /**
   * Why a relayed packet is not from a relay, or null if it is: relays send from the server
   * port (a client sends from 68), from their giaddr or an address in dhcp.relaySources.
   */
  private untrustedRelay(giaddr: string, from: Peer): string | null {
    if (from.port !== this.settings.serverPort) return 'relay-from-client-port';
    if (from.address === giaddr) return null;
    const source = parseIpv4(from.address);
    if (source !== null && this.settings.relaySources.some((c) => cidrContains(c, source))) return null;
    return 'relay-untrusted-source';
  }
}
