import { Counter, type Registry } from 'prom-client';
import type { Cmdb } from '../cmdb/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';

/** Machines deleted per transaction: a short write lock, so that DHCP's commits never wait long. */
const BATCH = 500;

/**
 * Deletes `discovered` machine records that were not seen for discovery.expireAfterSeconds and
 * hold no lease (a MAC that came once, or a made-up one, is not kept forever), each batch one
 * audited transaction. Runs every quarter of that time (between 1 s and 10 min); returns the
 * stopper, or null when expiry is off.
 */
export function startDiscoveredExpiry(cmdb: Cmdb, config: Config, registry: Registry, logger: Logger): (() => void) | null {
  const ttlMs = config.discovery.expireAfterSeconds * 1000;
  if (ttlMs === 0) return null;
  const expired = new Counter({ name: 'livery_machines_discovered_expired_total', help: 'Discovered machine records deleted after discovery.expireAfterSeconds unseen and without a lease', registers: [registry] });
  const sweep = () => {
    try {
      let macs: string[];
      do {
        const now = Date.now();
        macs = cmdb.tx(() => {
          const gone = cmdb.machines.expireDiscovered(now - ttlMs, now, BATCH);
          if (gone.length > 0) cmdb.audit.record('livery:expiry', 'machine.expire', `${gone.length} discovered machines`, { macs: gone });
          return gone;
        });
        expired.inc(macs.length);
        if (macs.length > 0) logger.info({ count: macs.length, macs: macs.slice(0, 10) }, 'expired discovered machines not seen lately');
      } while (macs.length === BATCH);
    } catch (err) {
      logger.error({ err }, 'expiring discovered machines failed; will try again');
    }
  };
  const timer = setInterval(sweep, Math.min(600_000, Math.max(1000, ttlMs / 4)));
  timer.unref();
  return () => clearInterval(timer);
}
