import type { SqlDb } from './sql.js';
import type { SubnetStore } from './store.js';
import type { FleetStats } from './types.js';
import { poolBounds } from './subnets.js';


/** The counts an operator graphs, read in one pass when /metrics is scraped. */
export function readFleetStats(db: SqlDb, subnets: SubnetStore, now = Date.now()): FleetStats {
  const machinesByState = db.prepare('SELECT state, count(*) AS n FROM machines GROUP BY state ORDER BY state').all() as FleetStats['machinesByState'];
  const leasesBySubnet = db
    .prepare('SELECT s.name AS subnet, l.state, count(*) AS n FROM leases l JOIN subnets s ON s.id = l.subnet_id GROUP BY s.name, l.state ORDER BY 1, 2')
    .all() as FleetStats['leasesBySubnet'];
  const liveInRange = db.prepare("SELECT count(*) AS n FROM leases WHERE state IN ('offered', 'bound') AND expires_at > ? AND ip BETWEEN ? AND ?");
  const pools = subnets.list().map((s) => {
    const bounds = poolBounds(s);
    return {
      subnet: s.name,
      size: bounds.reduce((n, b) => n + b.end - b.start + 1, 0),
      leased: bounds.reduce((n, b) => n + (liveInRange.get(now, b.start, b.end) as { n: number }).n, 0),
    };
  });
  const images = (db.prepare('SELECT count(*) AS n FROM images').get() as { n: number }).n;
  const catalogBytes = (db.prepare('SELECT coalesce(sum(size), 0) AS n FROM (SELECT DISTINCT sha256, size FROM image_artifacts) AS a').get() as { n: number }).n;
  return { machinesByState, leasesBySubnet, pools, images, catalogBytes };
}
