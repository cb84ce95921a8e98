import type { Gauge } from 'prom-client';
import type { Logger } from '../log.js';

/**
 * Says when a peer on the segment dies or comes back (its clients move to another node, or
 * back to it): one log line per change, and livery_dhcp_peer_up. Checked once a second, as
 * often as who is alive is read.
 */
export function watchPeers(peers: readonly string[], alive: (node: string) => boolean, gauge: Gauge<'node'>, logger: Logger): () => void {
  const last = new Map<string, boolean>();
  const check = () => {
    for (const node of peers) {
      const up = alive(node);
      gauge.set({ node }, up ? 1 : 0);
      const before = last.get(node);
      last.set(node, up);
      if (before === undefined ? up : before === up) continue;
      if (up) logger.info({ node }, 'dhcp peer is alive: it answers its own clients again');
      else logger.warn({ node }, 'dhcp peer is not alive (no fresh heartbeat): this node or another takes over its clients');
    }
  };
  check();
  const timer = setInterval(check, 1000);
  return () => clearInterval(timer);
}
