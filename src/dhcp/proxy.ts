import type { Exchange } from './exchange.js';
import type { LeaseBooks } from './lease-book.js';
import type { Client, Mode } from './loop.js';
import { DhcpMessageType, userClasses } from './wire/options.js';

/**
 * proxyDHCP (PXE 2.1): beside another DHCP server, which gives the addresses, livery answers
 * PXE clients (and iPXE) with boot information only. A DISCOVER on port 67 gets an OFFER; a
 * REQUEST on port 4011 gets an ACK, sent back where it came from. Nothing is leased.
 */
export class ProxyMode implements Mode {
  constructor(
    private readonly x: Exchange,
    private readonly books: LeaseBooks,
  ) {}

  answer(c: Client): void {
    const { p, via } = c;
    const vendor = p.options.vendorClassId ?? '';
    const isIpxe = userClasses(p).includes('iPXE') || p.options.ipxe !== undefined;
    if (!vendor.startsWith('PXEClient') && !vendor.startsWith('HTTPClient') && !isIpxe) return this.x.drop('proxy-not-a-pxe-client');
    // The client's REQUEST on port 67 is its exchange with the server that gives addresses.
    if (via === 'main' && c.type === DhcpMessageType.REQUEST) return this.x.drop('proxy-address-request');
    const wanted = via === 'main' ? DhcpMessageType.DISCOVER : DhcpMessageType.REQUEST;
    if (c.type !== wanted) return this.x.drop('proxy-unexpected-type');
    const book = this.books.containing(this.x.subnetHint(p));
    const plan = this.x.plan(c, book);
    this.x.step(plan, via === 'main' ? 'dhcp-proxy-discover' : 'dhcp-proxy-request', { ...this.x.clientDetail(p), next: plan.next });
    if (plan.action === 'ignore' || plan.next.kind === 'none') return this.x.drop('policy-ignore');
    const spec = { type: via === 'main' ? 'offer' : 'ack', request: p, server: this.x.server, plan, proxy: true } as const;
    // Port 4011 requests come unicast from a configured client: answer where they came from.
    this.x.send(c, spec, false, via === 'main' ? undefined : c.from);
  }

  /** Nothing is counted from the lease books in proxy mode. */
  reloaded(): void {}
}
