import type { BootPlan } from '../boot/plan.js';
import type { Subnet } from '../cmdb/index.js';
import { parseIpv4 } from '../net/ipv4.js';
import type { DhcpBootPath } from './contract.js';
import type { DiscoveryBudget } from './discovery-budget.js';
import type { LeaseBooks, SubnetBook } from './lease-book.js';
import type { Client } from './loop.js';
import type { DhcpMetrics } from './metrics.js';
import type { Claim, Outbox, Outgoing } from './outbox.js';
import { replyAddress, type Peer } from './reply-address.js';
import { buildReply, type ReplySpec, type ServerIdentity } from './reply.js';
import type { DhcpPacket } from './wire/codec.js';
import { userClasses } from './wire/options.js';

const ZERO = '0.0.0.0';

/**
 * The steps both modes take in an exchange: ask for the client's boot plan, record a stage of
 * it, and queue a reply. What they produce goes to the outbox, committed with its batch.
 */
export class Exchange {
  /** Who we are in every reply (server identifier, next-server). */
  readonly server: ServerIdentity;
  private readonly subnetContaining: (ip: number) => Subnet | null;

  constructor(
    private readonly boot: DhcpBootPath,
    readonly outbox: Outbox,
    books: LeaseBooks,
    /** Machine records unknown MACs may create, per subnet per interval. */
    private readonly discoveries: DiscoveryBudget,
    private readonly metrics: DhcpMetrics,
    private readonly ports: { server: number; client: number },
    serverAddress: string,
  ) {
    this.server = { address: serverAddress };
    // Subnets come from the lease books (re-read from the CMDB at most once a second), not a query per packet.
    this.subnetContaining = (ip: number) => books.containing(ip)?.subnet ?? null;
  }

  /** The address that places a packet in a subnet: the relay's giaddr, else the client's ciaddr, else ours. */
  subnetHint(p: DhcpPacket): number {
    return parseIpv4(p.giaddr !== ZERO ? p.giaddr : p.ciaddr !== ZERO ? p.ciaddr : this.server.address)!;
  }

  /** The client's boot plan; `book` is the subnet the packet places it in, if any. */
  plan({ p, machine }: Client, book: SubnetBook | null): BootPlan {
    const client = {
      mac: p.mac!,
      archCode: p.options.clientArch?.[0] ?? null,
      userClasses: userClasses(p),
      hasIpxeOption: p.options.ipxe !== undefined,
      vendorClass: p.options.vendorClassId ?? null,
      subnetHint: book ? book.cidr.network : null,
    };
    return this.boot.plan(client, { machine, subnetContaining: this.subnetContaining });
  }

  /**
   * Queues the boot event of a stage (and the discovery or last-seen stamp it implies). An
   * unknown MAC past its subnet's discovery budget leaves nothing: no record, no event.
   */
  step(plan: BootPlan, stage: string, detail: Record<string, unknown>): void {
    if (plan.discover && !plan.machine && !this.discoveries.allow(plan.subnet?.id ?? 0, plan.facts.mac, Date.now())) {
      this.metrics.discoveryRefused.inc();
      return;
    }
    this.outbox.write({ kind: 'boot-step', step: this.boot.step(plan, stage, detail) });
  }

  /** What the client said about itself, for its boot events. */
  clientDetail(p: DhcpPacket): Record<string, unknown> {
    return { vendorClass: p.options.vendorClassId ?? null, userClass: userClasses(p), relay: p.giaddr !== ZERO ? p.giaddr : null };
  }

  /** Queues a reply to where RFC 2131 §4.1 says it goes, or to `to` when given. */
  send(c: Client, spec: ReplySpec, durable: boolean, to?: Peer): void {
    this.outbox.reply(this.outgoing(c, spec, to), durable);
  }

  /** Queues an ACK granting `claim.ip`; it leaves once its batch is on disk, and only if the claim held. */
  sendClaimed(c: Client, spec: ReplySpec, claim: Claim): void {
    this.outbox.reply(this.outgoing(c, spec), true, claim);
  }

  outgoing(c: Client, spec: ReplySpec, to?: Peer): Outgoing {
    return { packet: buildReply(spec), to: to ?? replyAddress(spec.request, spec.type, this.ports), socket: c.socket, type: spec.type };
  }

  drop(reason: string): void {
    this.outbox.drop(reason);
  }
}
