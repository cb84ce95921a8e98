import type { Machine } from '../cmdb/index.js';
import type { Logger } from '../log.js';
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';
import type { Exchange } from './exchange.js';
import type { LeaseBooks, SubnetBook } from './lease-book.js';
import type { Client, Mode } from './loop.js';
import type { DhcpMetrics } from './metrics.js';
import type { UnknownMacBudget } from './unknown-macs.js';
import type { Outgoing } from './outbox.js';
import type { ReplySpec } from './reply.js';
import type { DhcpPacket } from './wire/codec.js';
import { DhcpMessageType } from './wire/options.js';

const ZERO = '0.0.0.0';

/**
 * Full mode: livery is the segment's DHCP server (RFC 2131), and gives addresses as well as
 * boot information. Each message type is one method below, in the order a client sends them.
 */
export class FullMode implements Mode {
  constructor(
    private readonly x: Exchange,
    private readonly books: LeaseBooks,
    /** Pool addresses held by MACs no operator registered, bounded (see UnknownMacBudget). */
    private readonly unknownMacs: UnknownMacBudget,
    private readonly isUnknownMac: (mac: string) => boolean,
    private readonly metrics: DhcpMetrics,
    private readonly logger: Logger,
  ) {
    this.reloaded();
  }

  answer(c: Client, now: number): void {
    const { p } = c;
    const relayed = p.giaddr !== ZERO;
    const book = this.books.containing(this.x.subnetHint(p));
    if (!book) return this.x.drop(relayed ? 'relay-subnet-unknown' : 'no-local-subnet');
    switch (c.type) {
      case DhcpMessageType.DISCOVER:
        return this.discover(c, book, now);
      case DhcpMessageType.REQUEST:
        return this.request(c, book, now);
      case DhcpMessageType.DECLINE:
        return this.decline(c, book, now);
      case DhcpMessageType.RELEASE:
        return this.release(c, book, now);
      case DhcpMessageType.INFORM:
        return this.inform(c, book);
      default:
        return this.x.drop('unexpected-message-type');
    }
  }

  /** Rebuilds the unknown-MAC counts from the lease books (at start, and when the books are reloaded). */
  reloaded(): void {
    this.unknownMacs.seed(this.books.all(), this.isUnknownMac, Date.now());
    this.metrics.unknownHeld.set(this.unknownMacs.size);
  }

  private discover(c: Client, book: SubnetBook, now: number): void {
    const { p } = c;
    const plan = this.x.plan(c, book);
    if (plan.action === 'ignore') {
      this.x.step(plan, 'dhcp-discover', this.x.clientDetail(p));
      return this.x.drop('policy-ignore');
    }
    const unknown = isUnknown(plan.machine);
    const requested = p.options.requestedIp ? parseIpv4(p.options.requestedIp) : null;
    const refusal = unknown ? this.unknownMacs.refusal(book, p.mac!, now) : null;
    const ip = this.books.offer(book, p.mac!, plan.machine?.ip ?? null, requested, now, refusal === null);
    if (ip === null) {
      this.x.step(plan, 'dhcp-discover', this.x.clientDetail(p));
      this.logger.warn({ subnet: book.subnet.name, mac: p.mac, reason: refusal ?? 'pool-exhausted' }, 'no address to offer');
      return this.x.drop(refusal ?? 'pool-exhausted');
    }
    if (unknown) this.holdForUnknown(book, p.mac!, ip);
    const yiaddr = formatIpv4(ip);
    // One event per DISCOVER, named by its outcome, as a REQUEST's is (dhcp-ack or dhcp-nak):
    // the offer carries what the client said about itself, and a DISCOVER left unanswered is
    // a dhcp-discover. Two event rows per exchange rather than three keep the writer's work
    // per exchange down.
    this.x.step(plan, 'dhcp-offer', { ...this.x.clientDetail(p), ip: yiaddr, next: plan.next });
    this.x.send(c, { type: 'offer', request: p, server: this.x.server, yiaddr, subnet: book.subnet, leaseSeconds: book.subnet.leaseSeconds, plan, hostname: plan.machine?.hostname }, false);
  }

  /** RFC 2131 §4.3.2: SELECTING, INIT-REBOOT, RENEWING and REBINDING are told apart by what is set. */
  private request(c: Client, book: SubnetBook, now: number): void {
    const { p } = c;
    const mac = p.mac!;
    const serverId = p.options.serverId;
    const requested = p.options.requestedIp;
    if (serverId !== undefined) {
      // SELECTING: the client chose a server; if not us, our offer is free again.
      if (serverId !== this.x.server.address) {
        if (this.books.dropOffer(book, mac)) this.unknownMacs.release(book, mac);
        return this.x.drop('request-for-another-server');
      }
      if (!requested) return this.nak(c, 'REQUEST in SELECTING state without a requested address');
      return this.confirm(c, book, parseIpv4(requested), now, 'selecting');
    }
    if (requested !== undefined && p.ciaddr === ZERO) {
      // INIT-REBOOT: the client asks to keep an address it remembers.
      const ip = parseIpv4(requested);
      if (ip === null || !(book.cidr.first <= ip && ip <= book.cidr.last)) return this.nak(c, `${requested} is not on this network`);
      const holder = this.books.holder(book, ip, now);
      if (holder && holder.mac !== mac) return this.nak(c, `${requested} belongs to another client`);
      const plan = this.x.plan(c, book);
      const own = holder?.mac === mac || this.books.holdingOf(book, mac)?.ip === ip || plan.machine?.ip === requested;
      if (!own) {
        if (plan.machine?.ip && plan.machine.ip !== requested) return this.nak(c, `${requested} is not this machine's reserved address`);
        return this.x.drop('init-reboot-no-record');
      }
      return this.confirm(c, book, ip, now, 'init-reboot');
    }
    if (p.ciaddr !== ZERO) {
      // RENEWING (unicast) or REBINDING (broadcast): extend the lease on ciaddr if it is this client's.
      const ip = parseIpv4(p.ciaddr)!;
      const holder = this.books.holder(book, ip, now);
      if (holder && holder.mac === mac) return this.confirm(c, book, ip, now, 'renewing');
      if (holder) return this.nak(c, `${p.ciaddr} belongs to another client`);
      return this.x.drop('renew-no-record');
    }
    return this.x.drop('request-without-address');
  }

  /** ACKs `ip` for the client if it may have it (its reservation, its offer, its lease, or free). */
  private confirm(c: Client, book: SubnetBook, ip: number | null, now: number, state: string): void {
    const { p } = c;
    const mac = p.mac!;
    const plan = this.x.plan(c, book);
    if (plan.action === 'ignore') return this.x.drop('policy-ignore');
    if (ip === null) return this.nak(c, 'requested address does not parse');
    const reserved = plan.machine?.ip ? parseIpv4(plan.machine.ip) : null;
    if (reserved !== null && reserved !== ip && book.cidr.first <= reserved && reserved <= book.cidr.last) {
      return this.nak(c, `${formatIpv4(ip)} is not this machine's reserved address`);
    }
    const allowed = reserved === ip || (book.pool.contains(ip) && this.books.availableTo(book, ip, mac, now));
    if (!allowed) return this.nak(c, `${formatIpv4(ip)} is not available to this client`);
    // Every path that binds comes here, so the unknown-MAC bounds hold for a REQUEST sent
    // without a DISCOVER as for an offer (a MAC already holding in this subnet keeps its own).
    const unknown = isUnknown(plan.machine);
    const refusal = unknown && reserved !== ip ? this.unknownMacs.refusal(book, mac, now) : null;
    if (refusal) return this.x.drop(refusal);
    const yiaddr = formatIpv4(ip);
    this.x.outbox.write(this.books.bind(book, mac, ip, now, { clientId: clientIdText(p), hostname: p.options.hostname ?? null, reserved: reserved === ip }));
    if (unknown) this.holdForUnknown(book, mac, ip);
    this.x.step(plan, 'dhcp-ack', { ip: yiaddr, state, next: plan.next });
    const ack: ReplySpec = { type: 'ack', request: p, server: this.x.server, yiaddr, subnet: book.subnet, leaseSeconds: book.subnet.leaseSeconds, plan, hostname: plan.machine?.hostname };
    // Another node sharing the segment may have leased the address meanwhile: the client then starts over.
    this.x.sendClaimed(c, ack, { ip: yiaddr, instead: () => this.nakReply(c, `${yiaddr} was leased to another client by another node`) });
  }

  /**
   * RFC 2131 §4.3.3: the client found the address in use. Only an address offered or leased to
   * this MAC by us is quarantined; what an unknown MAC quarantines stays counted against its
   * bounds until the quarantine ends, so a DECLINE storm cannot take more of the pool.
   */
  private decline(c: Client, book: SubnetBook, now: number): void {
    const { p } = c;
    const addr = p.options.requestedIp;
    const ip = addr ? parseIpv4(addr) : null;
    if (ip === null || p.options.serverId !== this.x.server.address) return this.x.drop('decline-not-ours');
    const write = this.books.decline(book, p.mac!, ip, now);
    if (!write) return this.x.drop('decline-not-holder');
    if (isUnknown(c.machine)) this.holdForUnknown(book, p.mac!, ip);
    this.logger.warn({ ip: addr, mac: p.mac }, 'client declined an address (in use by someone else?): quarantined');
    this.x.outbox.write(write);
    this.x.outbox.write({ kind: 'event', event: { type: 'dhcp-decline', mac: p.mac, detail: { ip: addr }, at: now } });
  }

  /**
   * RFC 2131 §4.3.4/§4.4.4: the client gives its lease back. Only the holder may: ciaddr is the
   * leased address, chaddr and client identifier are the lease's, and a packet that did not
   * come through a relay comes from that address.
   */
  private release(c: Client, book: SubnetBook, now: number): void {
    const { p } = c;
    const ip = parseIpv4(p.ciaddr);
    if (ip === null || p.ciaddr === ZERO || (p.options.serverId !== undefined && p.options.serverId !== this.x.server.address)) return this.x.drop('release-not-ours');
    if (p.giaddr === ZERO && c.from.address !== p.ciaddr) return this.x.drop('release-wrong-source');
    const write = this.books.release(book, p.mac!, clientIdText(p), ip, now);
    if (!write) return this.x.drop('release-not-holder');
    this.unknownMacs.release(book, p.mac!);
    this.metrics.unknownHeld.set(this.unknownMacs.size);
    this.x.outbox.write(write);
    this.x.outbox.write({ kind: 'event', event: { type: 'dhcp-release', mac: p.mac, detail: { ip: p.ciaddr }, at: now } });
  }

  /** RFC 2131 §4.3.5: a client with an address of its own asks only for its configuration. */
  private inform(c: Client, book: SubnetBook): void {
    const plan = this.x.plan(c, book);
    this.x.send(c, { type: 'ack', request: c.p, server: this.x.server, subnet: book.subnet, plan: plan.action === 'ignore' ? null : plan }, false);
  }

  private nak(c: Client, message: string): void {
    this.x.outbox.reply(this.nakReply(c, message), false);
  }

  /** A NAK, with its event (committed with the next batch when this is an ACK's replacement). */
  private nakReply(c: Client, message: string): Outgoing {
    this.x.outbox.write({ kind: 'event', event: { type: 'dhcp-nak', mac: c.p.mac, detail: { message }, at: Date.now() } });
    return this.x.outgoing(c, { type: 'nak', request: c.p, server: this.x.server, message });
  }

  /** Counts a pool address an unknown MAC now holds, until its hold (offer, lease, quarantine) ends. */
  private holdForUnknown(book: SubnetBook, mac: string, ip: number): void {
    const h = this.books.holdingOf(book, mac);
    if (!book.pool.contains(ip) || h?.ip !== ip) return;
    this.unknownMacs.hold(book, mac, h.expiresAt);
    this.metrics.unknownHeld.set(this.unknownMacs.size);
  }
}

/** A MAC no operator registered (none, or only discovered): bounded in what it may hold. */
export function isUnknown(machine: Machine | null): boolean {
  return !machine || machine.state === 'discovered';
}

function clientIdText(p: DhcpPacket): string | null {
  const id = p.options.clientId;
  return id ? Buffer.from(id).toString('hex') : null;
}
