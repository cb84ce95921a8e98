import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type DhcpMetrics = ReturnType<typeof dhcpMetrics>;

/** Every packet the DHCP server sees is counted: received, answered, or dropped and why. */
export function dhcpMetrics(registry: Registry) {
  return {
    received: new Counter({ name: 'livery_dhcp_received_total', help: 'DHCP packets received by message type', labelNames: ['type'], registers: [registry] }),
    sent: new Counter({ name: 'livery_dhcp_sent_total', help: 'DHCP replies sent by message type', labelNames: ['type'], registers: [registry] }),
    dropped: new Counter({ name: 'livery_dhcp_dropped_total', help: 'DHCP packets dropped, by reason', labelNames: ['reason'], registers: [registry] }),
    malformed: new Counter({ name: 'livery_dhcp_malformed_total', help: 'Undecodable DHCP packets, by error kind', labelNames: ['kind'], registers: [registry] }),
    batch: new Histogram({ name: 'livery_dhcp_commit_batch_size', help: 'Replies per stretch of answering, each stretch one batch of writes (the writer thread merges the batches that wait while it commits)', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] }),
    commitSeconds: new Histogram({ name: 'livery_dhcp_commit_seconds', help: 'Time from committing one batch of lease writes until it is on disk', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5], registers: [registry] }),
    up: new Gauge({ name: 'livery_dhcp_up', help: '1 while DHCP answers on dhcp.interface, 0 while it waits for the interface to carry dhcp.address', registers: [registry] }),
    discoveryRefused: new Counter({ name: 'livery_dhcp_discovery_refused_total', help: 'Boot steps of unknown MACs left unrecorded (no machine record, no event) past discovery.maxPerSubnet per interval; the packet is still answered', registers: [registry] }),
    peerUp: new Gauge({ name: 'livery_dhcp_peer_up', help: '1 while a node of dhcp.peers answers DHCP (its heartbeat is fresh), 0 while its clients are taken over', labelNames: ['node'], registers: [registry] }),
    unknownHeld: new Gauge({ name: 'livery_dhcp_unknown_mac_addresses', help: 'Pool addresses held by MACs not registered by an operator', registers: [registry] }),
  };
}
