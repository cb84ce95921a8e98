import type { DhcpPacket } from './wire/codec.js';

/** Where a datagram came from, or goes to. */
export interface Peer {
  address: string;
  port: number;
}

const ZERO = '0.0.0.0';
const BROADCAST = '255.255.255.255';

/**
 * Where a reply to `request` goes, by RFC 2131 §4.1: to the relay agent (its giaddr, on the
 * server port) when relayed; else to the client's own address when it has one (RENEWING, or
 * INFORM); else broadcast, as is every NAK. Livery sends from an ordinary UDP socket, so
 * it cannot unicast to an address the client does not have yet (the broadcast bit aside).
 */
export function replyAddress(request: DhcpPacket, type: 'offer' | 'ack' | 'nak', ports: { server: number; client: number }): Peer {
  if (request.giaddr !== ZERO) return { address: request.giaddr, port: ports.server };
  if (type === 'nak' || request.ciaddr === ZERO) return { address: BROADCAST, port: ports.client };
  return { address: request.ciaddr, port: ports.client };
}
