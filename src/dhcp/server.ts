import type { Registry } from 'prom-client';
import { bootStep, classifyDhcpClient, decide, type BootPlan, type ClientFacts, type DecideContext } from '../boot/index.js';
import { MachineCache, Writer, type Cmdb, type Machine, type WriteOp } from '../cmdb/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { cidrContains, formatIpv4, parseAddressOrCidr, parseIpv4, type Cidr } from '../net/ipv4.js';
import { openDatagramSocket, type DatagramSocket, type OnDatagram } from '../net/datagram.js';
import { BootOp, decodeDhcp, encodeDhcp, type DhcpPacket, type DhcpPacketInit } from './wire/codec.js';
import { servedInterface } from './served-interface.js';
import { LeaseBooks, type SubnetBook } from './lease-book.js';
import { dhcpMetrics, type DhcpMetrics } from './metrics.js';
import { DhcpMessageType, messageTypeName, userClasses } from './wire/options.js';
import { Backlog } from './backlog.js';
import { RateLimiter } from './ratelimit.js';
import { buildReply, type ReplySpec, type ServerIdentity } from './reply.js';
import { UnknownMacBudget } from './unknown-macs.js';
import { DiscoveryBudget } from './discovery-budget.js';

export interface DhcpServer {
  close(): Promise<void>;
}

export interface DhcpServerOptions {
  cmdb: Cmdb;
  config: Config;
  registry: Registry;
  logger: Logger;
}

interface Outgoing {
  packet: DhcpPacketInit;
  address: string;
  port: number;
  socket: DatagramSocket;
  type: string;
}

interface Peer {
  address: string;
  port: number;
}

/** A decoded client packet waiting in the backlog: when it was read, and where it came in. */
interface Waiting {
  p: DhcpPacket;
  type: number;
  discover: boolean;
  at: number;
  /** Where the datagram came from (a 4011 REQUEST is answered there). */
  from: Peer;
  socket: DatagramSocket;
  via: 'main' | 'proxy-4011';
}

/** One packet being answered: the machine it comes from (null: unknown MAC), and the socket it came in on. */
interface Client {
  p: DhcpPacket;
  machine: Machine | null;
  socket: DatagramSocket;
}

const ZERO = '0.0.0.0';
const BROADCAST = '255.255.255.255';
/**
 * Longest stretch spent answering before the loop reads the socket again. libuv reads up to
 * 32 datagrams per pass, so short stretches keep the kernel's queue short and the backlog's
 * read times (which decide what is stale) close to the arrival times. Under perfdhcp at
 * 5,500 exchanges/s offered, 1 ms answered 4,400–4,500/s where 2 ms answered 3,200.
 */
const SLICE_MS = 1;

/**
 * Starts livery's DHCP server on dhcp.interface, or, while that interface does not carry
 * dhcp.address yet (no carrier: Node lists only running links), waits for it, checking every
 * dhcp.interfaceRetrySeconds, and starts answering as soon as it does; the rest of livery
 * serves meanwhile. An interface that does not exist at all is refused at once (InterfaceError).
 */
export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const d = opts.config.dhcp;
  const metrics = dhcpMetrics(opts.registry);
  const served = servedInterface(d.interface, d.address);
  if (served.ready) return listen(opts, metrics, served.index);
  metrics.up.set(0);
  opts.logger.warn({ interface: d.interface, address: d.address }, `${served.why}: DHCP waits for it, checking every ${d.interfaceRetrySeconds} s (HTTP and TFTP serve meanwhile)`);
  let server: DhcpServer | null = null;
  const timer = setInterval(() => {
    try {
      const now = servedInterface(d.interface, d.address);
      if (!now.ready) return;
      clearInterval(timer);
      server = listen(opts, metrics, now.index);
    } catch (err) {
      // The interface was removed, or the socket could not be opened: say so, and keep trying.
      opts.logger.error({ err }, 'dhcp: cannot start on its interface yet; will try again');
    }
  }, d.interfaceRetrySeconds * 1000);
  return {
    close: async () => {
      clearInterval(timer);
      await server?.close();
    },
  };
}

/**
 * livery's DHCP server. One socket on port 67 (and 4011 in proxy mode), confined to the served
 * interface. Each packet is decoded as it is read and waits in the backlog (see Backlog for
 * the order under overload); answering one: rate limit → client facts → boot plan (CMDB) →
 * address → reply. The lease writes and boot events of each stretch of answers are committed
 * in one SQLite transaction (group commit) on the CMDB's writer thread, and an ACK leaves
 * only once its lease is on disk.
 */
function listen(opts: DhcpServerOptions, metrics: DhcpMetrics, ifindex: number): DhcpServer {
  const { cmdb, config, logger } = opts;
  const d = config.dhcp;
  const books = new LeaseBooks(cmdb, { offerHoldSeconds: d.offerHoldSeconds, declineQuarantineSeconds: d.declineQuarantineSeconds });
  const limiter = new RateLimiter(d.rateLimit.perMacPerSecond, d.rateLimit.globalPerSecond);
  const serverAddress = parseIpv4(d.address)!;
  const local = books.containing(serverAddress);
  if (d.mode === 'full' && !local) {
    logger.warn({ address: d.address }, 'no subnet in the CMDB contains dhcp.address: only relayed clients will get addresses');
  }
  const sockets: DatagramSocket[] = [];
  const writer = new Writer(cmdb.db.name);
  const handler = new Handler(cmdb, writer, config, books, limiter, metrics, logger);
  const close = async () => {
    await handler.stop();
    await writer.close();
    for (const socket of sockets) socket.close();
  };
  try {
    const main: DatagramSocket = openSocket(d.port, ifindex, (buf, address, port) => handler.onPacket(buf, { address, port }, main, 'main'));
    sockets.push(main);
    if (d.mode === 'proxy') {
      const proxy: DatagramSocket = openSocket(d.proxyPort, ifindex, (buf, address, port) => handler.onPacket(buf, { address, port }, proxy, 'proxy-4011'));
      sockets.push(proxy);
    }
  } catch (err) {
    void close();
    throw err;
  }
  metrics.up.set(1);
  logger.info({ interface: d.interface, address: d.address, mode: d.mode, port: d.port }, 'dhcp listening');
  return { close };
}

/**
 * Port 67 (or 4011) on every address, confined to the served interface: Node's dgram cannot say
 * which interface a broadcast arrived on, so the socket neither receives nor sends on any other.
 */
function openSocket(port: number, ifindex: number, onDatagram: OnDatagram): DatagramSocket {
  // A rack powering on at once bursts thousands of DISCOVERs; the kernel's default receive
  // buffer (~208 KB) dropped them in the boot-storm benchmark. Ask for more (capped by rmem_max).
  return openDatagramSocket({ address: ZERO, port, ifindex, receiveBufferBytes: 4 * 1024 * 1024 }, onDatagram);
}

class Handler {
  private writes: WriteOp[] = [];
  private outgoing: { out: Outgoing; durable: boolean }[] = [];
  private readonly backlog: Backlog<Waiting>;
  private answering = false;
  private stopped = false;
  /** Batches whose ACKs wait for their commit to reach the disk. */
  private readonly awaitingDisk = new Set<Promise<void>>();
  private readonly serverId: string;
  /** Who we are in every reply (server identifier, next-server). */
  private readonly server: ServerIdentity;
  /** Pool addresses held by MACs no operator registered, bounded (see UnknownMacBudget). */
  private readonly unknownMacs: UnknownMacBudget;
  /** Machine records unknown MACs may create, per subnet per interval. */
  private readonly discoveries: DiscoveryBudget;
  /** Where relay agents may send from besides their giaddr (dhcp.relaySources). */
  private readonly relaySources: Cidr[];
  private readonly decideContext: DecideContext;
  private readonly machines: MachineCache;

  constructor(
    cmdb: Cmdb,
    private readonly writer: Writer,
    private readonly config: Config,
    private readonly books: LeaseBooks,
    private readonly limiter: RateLimiter,
    private readonly metrics: DhcpMetrics,
    private readonly logger: Logger,
  ) {
    this.serverId = config.dhcp.address;
    this.server = { address: this.serverId };
    this.machines = new MachineCache(cmdb.machines, cmdb.assignments);
    this.backlog = new Backlog(config.dhcp.maxWaitMs);
    this.relaySources = config.dhcp.relaySources.map((r) => parseAddressOrCidr(r)!);
    this.unknownMacs = new UnknownMacBudget({ cap: config.dhcp.unknownMacLeaseCap, poolPercent: config.dhcp.unknownMacPoolPercent });
    this.countUnknownHolds();
    this.discoveries = new DiscoveryBudget(config.discovery);
    // Subnets come from the lease books (re-read from the CMDB at most once a second), not a query per packet.
    this.decideContext = { cmdb, config, subnetContaining: (ip) => books.containing(ip)?.subnet ?? null, rules: () => this.machines.rules() };
  }

  /** Reading is cheap and comes first: a packet is decoded, counted and queued; answering waits its turn. */
  onPacket(buf: Buffer, from: Peer, socket: DatagramSocket, via: 'main' | 'proxy-4011'): void {
    if (this.stopped) return;
    const decoded = decodeDhcp(buf);
    if (!decoded.ok) {
      this.metrics.malformed.inc({ kind: decoded.error.kind });
      return;
    }
    const p = decoded.packet;
    if (p.op !== BootOp.REQUEST || !p.mac) return this.drop('not-a-client-request');
    const type = p.options.messageType;
    if (type === undefined) return this.drop('bootp-without-dhcp');
    this.metrics.received.inc({ type: messageTypeName(type) });
    if (p.giaddr !== ZERO) {
      const untrusted = this.untrustedRelay(p.giaddr, from);
      if (untrusted) return this.drop(untrusted);
    }
    this.backlog.push({ p, type, discover: type === DhcpMessageType.DISCOVER, at: Date.now(), from, socket, via });
    if (!this.answering) {
      this.answering = true;
      setImmediate(() => this.answerSome());
    }
  }

  /** Answers from the backlog for one short stretch, sends and commits what that produced, and yields to reading. */
  private answerSome(): void {
    if (this.stopped) return;
    const until = performance.now() + SLICE_MS;
    const now = Date.now();
    const stale = () => this.drop('stale');
    do {
      const w = this.backlog.next(now, stale);
      if (!w) break;
      this.answer(w, now);
    } while (performance.now() < until);
    this.flush();
    if (this.backlog.size > 0) setImmediate(() => this.answerSome());
    else this.answering = false;
  }

  private answer(w: Waiting, now: number): void {
    const { p, socket } = w;
    try {
      // One lookup per packet: the limiter needs to know whether the MAC is known, decide() needs the machine.
      const machine = this.machines.byCanonicalMac(p.mac!);
      const verdict = this.limiter.allow(p.mac!, now, machine !== null);
      if (verdict !== 'ok') return this.drop(`rate-limit-${verdict}`);
      this.books.refresh();
      const client: Client = { p, machine, socket };
      if (this.config.dhcp.mode === 'proxy') this.proxy(client, w.from, w.via);
      else this.full(client, w.type, w.from, now);
    } catch (err) {
      // A packet must never take the server down; count it and carry on.
      this.drop('handler-error');
      this.logger.error({ err }, 'dhcp handler error');
    }
  }

  /**
   * Stops reading and answering (what waits in the backlog is left for its client to send
   * again), commits what is pending and waits until every ACK held for the disk has gone out.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.flush();
    await Promise.all(this.awaitingDisk);
  }

  // --- full mode ---------------------------------------------------------------------------

  private full(c: Client, type: number, from: Peer, now: number): void {
    const { p } = c;
    const relayed = p.giaddr !== ZERO;
    const hint = relayed ? parseIpv4(p.giaddr)! : p.ciaddr !== ZERO ? parseIpv4(p.ciaddr)! : parseIpv4(this.serverId)!;
    const book = this.books.containing(hint);
    if (!book) return this.drop(relayed ? 'relay-subnet-unknown' : 'no-local-subnet');
    switch (type) {
      case DhcpMessageType.DISCOVER:
        return this.discover(c, book, now);
      case DhcpMessageType.REQUEST:
        return this.request(c, book, now);
      case DhcpMessageType.DECLINE:
        return this.decline(c, book, now);
      case DhcpMessageType.RELEASE:
        return this.release(c, book, from, now);
      case DhcpMessageType.INFORM:
        return this.inform(c, book);
      default:
        return this.drop('unexpected-message-type');
    }
  }

  private discover(c: Client, book: SubnetBook, now: number): void {
    const { p, socket } = c;
    const plan = this.plan(c, book);
    if (plan.action === 'ignore') {
      this.step(plan, 'dhcp-discover', this.clientDetail(p));
      return this.drop('policy-ignore');
    }
    const unknown = isUnknown(plan.machine);
    const requested = p.options.requestedIp ? parseIpv4(p.options.requestedIp) : null;
    const refusal = unknown ? this.unknownMacs.refusal(book, p.mac!, now) : null;
    const ip = this.books.offer(book, p.mac!, plan.machine?.ip ?? null, requested, now, refusal === null);
    if (ip === null) {
      this.step(plan, 'dhcp-discover', this.clientDetail(p));
      this.logger.warn({ subnet: book.subnet.name, mac: p.mac, reason: refusal ?? 'pool-exhausted' }, 'no address to offer');
      return this.drop(refusal ?? 'pool-exhausted');
    }
    if (unknown) this.holdForUnknown(book, p.mac!, ip);
    const yiaddr = formatIpv4(ip);
    // One event per DISCOVER, named by its outcome, as a REQUEST's is (dhcp-ack or dhcp-nak):
    // the offer carries what the client said about itself, and a DISCOVER left unanswered is
    // a dhcp-discover. Two event rows per exchange rather than three: the writer thread's CPU per
    // exchange went from ~57 to ~49 µs under perfdhcp at 3,500/s.
    this.step(plan, 'dhcp-offer', { ...this.clientDetail(p), ip: yiaddr, next: plan.next });
    this.send(socket, { type: 'offer', request: p, server: this.server, yiaddr, subnet: book.subnet, leaseSeconds: book.subnet.leaseSeconds, plan, hostname: plan.machine?.hostname }, false);
  }

  /** RFC 2131 §4.3.2: SELECTING, INIT-REBOOT, RENEWING and REBINDING are told apart by what is set. */
  private request(c: Client, book: SubnetBook, now: number): void {
    const { p, socket } = c;
    const mac = p.mac!;
    const serverId = p.options.serverId;
    const requested = p.options.requestedIp;
    if (serverId !== undefined) {
      // SELECTING: the client chose a server; if not us, our offer is free again.
      if (serverId !== this.serverId) {
        if (this.books.dropOffer(book, mac)) this.unknownMacs.release(book, mac);
        return this.drop('request-for-another-server');
      }
      if (!requested) return this.nak(p, socket, 'REQUEST in SELECTING state without a requested address');
      return this.confirm(c, book, parseIpv4(requested), now, 'selecting');
    }
    if (requested !== undefined && p.ciaddr === ZERO) {
      // INIT-REBOOT: the client asks to keep an address it remembers.
      const ip = parseIpv4(requested);
      if (ip === null || !(book.cidr.first <= ip && ip <= book.cidr.last)) return this.nak(p, socket, `${requested} is not on this network`);
      const holder = this.books.holder(book, ip, now);
      if (holder && holder.mac !== mac) return this.nak(p, socket, `${requested} belongs to another client`);
      const plan = this.plan(c, book);
      const own = holder?.mac === mac || this.books.holdingOf(book, mac)?.ip === ip || plan.machine?.ip === requested;
      if (!own) {
        if (plan.machine?.ip && plan.machine.ip !== requested) return this.nak(p, socket, `${requested} is not this machine's reserved address`);
        return this.drop('init-reboot-no-record');
      }
      return this.confirm(c, book, ip, now, 'init-reboot');
    }
    if (p.ciaddr !== ZERO) {
      // RENEWING (unicast) or REBINDING (broadcast): extend the lease on ciaddr if it is this client's.
      const ip = parseIpv4(p.ciaddr)!;
      const holder = this.books.holder(book, ip, now);
      if (holder && holder.mac === mac) return this.confirm(c, book, ip, now, 'renewing');
      if (holder) return this.nak(p, socket, `${p.ciaddr} belongs to another client`);
      return this.drop('renew-no-record');
    }
    return this.drop('request-without-address');
  }

  /** ACKs `ip` for the client if it may have it (its reservation, its offer, its lease, or free). */
  private confirm(c: Client, book: SubnetBook, ip: number | null, now: number, state: string): void {
    const { p, socket } = c;
    const mac = p.mac!;
    const plan = this.plan(c, book);
    if (plan.action === 'ignore') return this.drop('policy-ignore');
    if (ip === null) return this.nak(p, socket, 'requested address does not parse');
    const reserved = plan.machine?.ip ? parseIpv4(plan.machine.ip) : null;
    if (reserved !== null && reserved !== ip && (book.cidr.first <= reserved && reserved <= book.cidr.last)) {
      return this.nak(p, socket, `${formatIpv4(ip)} is not this machine's reserved address`);
    }
    const allowed = reserved === ip || (book.pool.contains(ip) && this.books.availableTo(book, ip, mac, now));
    if (!allowed) return this.nak(p, socket, `${formatIpv4(ip)} is not available to this client`);
    // Every path that binds comes here, so the unknown-MAC bounds hold for a REQUEST sent
    // without a DISCOVER as for an offer (a MAC already holding in this subnet keeps its own).
    const unknown = isUnknown(plan.machine);
    const refusal = unknown && reserved !== ip ? this.unknownMacs.refusal(book, mac, now) : null;
    if (refusal) return this.drop(refusal);
    const yiaddr = formatIpv4(ip);
    this.writes.push(this.books.bind(book, mac, ip, now, { clientId: clientIdText(p), hostname: p.options.hostname ?? null }));
    if (unknown) this.holdForUnknown(book, mac, ip);
    this.step(plan, 'dhcp-ack', { ip: yiaddr, state, next: plan.next });
    this.send(socket, { type: 'ack', request: p, server: this.server, yiaddr, subnet: book.subnet, leaseSeconds: book.subnet.leaseSeconds, plan, hostname: plan.machine?.hostname }, true);
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
    if (ip === null || p.options.serverId !== this.serverId) return this.drop('decline-not-ours');
    const write = this.books.decline(book, p.mac!, ip, now);
    if (!write) return this.drop('decline-not-holder');
    if (isUnknown(c.machine)) this.holdForUnknown(book, p.mac!, ip);
    this.logger.warn({ ip: addr, mac: p.mac }, 'client declined an address (in use by someone else?): quarantined');
    this.writes.push(write);
    this.writes.push({ kind: 'event', event: { type: 'dhcp-decline', mac: p.mac, detail: { ip: addr }, at: now } });
  }

  /**
   * RFC 2131 §4.3.4/§4.4.4: the client gives its lease back. Only the holder may: ciaddr is the
   * leased address, chaddr and client identifier are the lease's, and a packet that did not
   * come through a relay comes from that address.
   */
  private release(c: Client, book: SubnetBook, from: Peer, now: number): void {
    const { p } = c;
    const ip = parseIpv4(p.ciaddr);
    if (ip === null || p.ciaddr === ZERO || (p.options.serverId !== undefined && p.options.serverId !== this.serverId)) return this.drop('release-not-ours');
    if (p.giaddr === ZERO && from.address !== p.ciaddr) return this.drop('release-wrong-source');
    const write = this.books.release(book, p.mac!, clientIdText(p), ip, now);
    if (!write) return this.drop('release-not-holder');
    this.unknownMacs.release(book, p.mac!);
    this.metrics.unknownHeld.set(this.unknownMacs.size);
    this.writes.push(write);
    this.writes.push({ kind: 'event', event: { type: 'dhcp-release', mac: p.mac, detail: { ip: p.ciaddr }, at: now } });
  }

  private inform(c: Client, book: SubnetBook): void {
    const { p, socket } = c;
    const plan = this.plan(c, book);
    this.send(socket, { type: 'ack', request: p, server: this.server, subnet: book.subnet, plan: plan.action === 'ignore' ? null : plan }, false);
  }

  private nak(p: DhcpPacket, socket: DatagramSocket, message: string): void {
    this.writes.push({ kind: 'event', event: { type: 'dhcp-nak', mac: p.mac, detail: { message }, at: Date.now() } });
    this.send(socket, { type: 'nak', request: p, server: this.server, message }, false);
  }

  /** Counts a pool address an unknown MAC now holds, until its hold (offer, lease, quarantine) ends. */
  private holdForUnknown(book: SubnetBook, mac: string, ip: number): void {
    const h = this.books.holdingOf(book, mac);
    if (!book.pool.contains(ip) || h?.ip !== ip) return;
    this.unknownMacs.hold(book, mac, h.expiresAt);
    this.metrics.unknownHeld.set(this.unknownMacs.size);
  }

  /** Rebuilds the unknown-MAC counts from the lease books (at start, and when the books are reloaded). */
  private countUnknownHolds(): void {
    this.unknownMacs.seed(this.books.all(), (mac) => isUnknown(this.machines.byCanonicalMac(mac)), Date.now());
    this.metrics.unknownHeld.set(this.unknownMacs.size);
  }

  /**
   * Why a relayed packet is not from a relay, or null if it is: relays send from the server
   * port (a client sends from 68), from their giaddr or an address in dhcp.relaySources.
   */
  private untrustedRelay(giaddr: string, from: Peer): string | null {
    if (from.port !== this.config.dhcp.port) return 'relay-from-client-port';
    if (from.address === giaddr) return null;
    const source = parseIpv4(from.address);
    if (source !== null && this.relaySources.some((c) => cidrContains(c, source))) return null;
    return 'relay-untrusted-source';
  }

  // --- proxyDHCP ---------------------------------------------------------------------------

  /**
   * Beside another DHCP server: answer PXE clients (and iPXE) with boot information only, no
   * address. DISCOVER on 67 gets an OFFER; REQUEST on 4011 gets an ACK.
   */
  private proxy(c: Client, from: Peer, via: 'main' | 'proxy-4011'): void {
    const { p, socket } = c;
    const vendor = p.options.vendorClassId ?? '';
    const isIpxe = userClasses(p).includes('iPXE') || p.options.ipxe !== undefined;
    if (!vendor.startsWith('PXEClient') && !vendor.startsWith('HTTPClient') && !isIpxe) return this.drop('proxy-not-a-pxe-client');
    const type = p.options.messageType;
    // The client's REQUEST on port 67 is its exchange with the server that gives addresses.
    if (via === 'main' && type === DhcpMessageType.REQUEST) return this.drop('proxy-address-request');
    const wanted = via === 'main' ? DhcpMessageType.DISCOVER : DhcpMessageType.REQUEST;
    if (type !== wanted) return this.drop('proxy-unexpected-type');
    const hint = p.giaddr !== ZERO ? parseIpv4(p.giaddr)! : p.ciaddr !== ZERO ? parseIpv4(p.ciaddr)! : parseIpv4(this.serverId)!;
    const book = this.books.containing(hint);
    const plan = this.plan(c, book);
    this.step(plan, via === 'main' ? 'dhcp-proxy-discover' : 'dhcp-proxy-request', { ...this.clientDetail(p), next: plan.next });
    if (plan.action === 'ignore' || plan.next.kind === 'none') return this.drop('policy-ignore');
    const spec: ReplySpec = { type: via === 'main' ? 'offer' : 'ack', request: p, server: this.server, plan, proxy: true };
    if (via === 'main') return this.send(socket, spec, false);
    // Port 4011 requests come unicast from a configured client: answer where they came from.
    this.outgoing.push({ out: { packet: buildReply(spec), address: from.address, port: from.port, socket, type: 'ack' }, durable: false });
  }

  // --- shared ------------------------------------------------------------------------------

  private plan({ p, machine }: Client, book: SubnetBook | null): BootPlan {
    const archCode = p.options.clientArch?.[0] ?? null;
    const { firmware, arch } = classifyDhcpClient({
      archCode,
      userClasses: userClasses(p),
      hasIpxeOption: p.options.ipxe !== undefined,
      vendorClass: p.options.vendorClassId ?? null,
    });
    const facts: ClientFacts = { mac: p.mac!, firmware, arch, archCode, subnetHint: book ? book.cidr.network : null, door: 'dhcp' };
    // A literal of one shape, not a spread: this runs twice per exchange.
    const { cmdb, config, subnetContaining, rules } = this.decideContext;
    return decide(facts, { cmdb, config, subnetContaining, machine, rules });
  }

  /**
   * Queues the boot event of a stage (and the discovery or last-seen stamp it implies). An
   * unknown MAC past its subnet's discovery budget leaves nothing: no record, no event.
   */
  private step(plan: BootPlan, stage: string, detail: Record<string, unknown>): void {
    if (plan.discover && !plan.machine && !this.discoveries.allow(plan.subnet?.id ?? 0, plan.facts.mac, Date.now())) {
      this.metrics.discoveryRefused.inc();
      return;
    }
    this.writes.push({ kind: 'boot-step', step: bootStep(plan, stage, detail) });
  }

  private clientDetail(p: DhcpPacket): Record<string, unknown> {
    return { vendorClass: p.options.vendorClassId ?? null, userClass: userClasses(p), relay: p.giaddr !== ZERO ? p.giaddr : null };
  }

  /** Queues a reply to where RFC 2131 §4.1 says it goes. */
  private send(socket: DatagramSocket, spec: ReplySpec, durable: boolean): void {
    const p = spec.request;
    const packet = buildReply(spec);
    let address: string;
    let port = this.config.dhcp.clientPort;
    if (p.giaddr !== ZERO) {
      address = p.giaddr;
      port = this.config.dhcp.port;
    } else if (spec.type === 'nak' || p.ciaddr === ZERO) {
      // Without a raw socket we cannot unicast to an address the client does not have yet.
      address = BROADCAST;
    } else {
      address = p.ciaddr;
    }
    this.outgoing.push({ out: { packet, address, port, socket, type: spec.type }, durable });
  }

  /**
   * Group commit: every write of this batch in one transaction, then the replies. OFFERs and
   * NAKs promise nothing and go at once; ACKs wait until the leases they grant are on disk.
   * The commit runs on the writer thread, so packets keep being read and decided meanwhile;
   * they form the next batch.
   */
  private flush(): void {
    const writes = this.writes;
    const outgoing = this.outgoing;
    if (writes.length === 0 && outgoing.length === 0) return;
    this.writes = [];
    this.outgoing = [];
    this.metrics.batch.observe(outgoing.length);
    const acks = outgoing.filter((o) => o.durable);
    for (const { out, durable: needsDisk } of outgoing) if (!needsDisk) this.transmit(out);
    if (writes.length === 0) {
      acks.forEach(({ out }) => this.transmit(out));
      return;
    }
    const stop = this.metrics.commitSeconds.startTimer();
    const durable = this.writer.commit(writes);
    // A failed commit is logged and the books reloaded whether or not this batch holds ACKs:
    // OFFERs have already gone out on the strength of holds that may now not exist.
    const sent = durable.then(
      (outcome) => {
        stop();
        this.machines.remember(outcome);
        acks.forEach(({ out }) => this.transmit(out));
      },
      (err: unknown) => {
        stop();
        this.logger.error({ err }, 'lease commit failed: withholding ACKs and reloading leases from the database');
        this.books.reload();
        this.countUnknownHolds();
        for (let i = 0; i < acks.length; i++) this.drop('commit-failed');
      },
    );
    this.awaitingDisk.add(sent);
    void sent.finally(() => this.awaitingDisk.delete(sent));
  }

  private transmit(out: Outgoing): void {
    const failed = out.socket.send(encodeDhcp(out.packet), out.port, out.address);
    if (failed === null) this.metrics.sent.inc({ type: out.type });
    else this.drop(`send-${failed}`);
  }

  private drop(reason: string): void {
    this.metrics.dropped.inc({ reason });
  }
}

/** A MAC no operator registered (none, or only discovered): bounded in what it may hold. */
function isUnknown(machine: Machine | null): boolean {
  return !machine || machine.state === 'discovered';
}

function clientIdText(p: DhcpPacket): string | null {
  const id = p.options.clientId;
  return id ? Buffer.from(id).toString('hex') : null;
}
