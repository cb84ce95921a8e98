import { Gauge, type Registry } from 'prom-client';
import type { Cmdb, FleetStats } from '../cmdb/index.js';
import { cmdbUnavailable } from '../cmdb/postgres/unavailable.js';
import { liveryVersion } from '../version.js';

/**
 * What the fleet looks like, read from the CMDB at each scrape. Registered once, in the process
 * that answers /metrics for every HTTP worker, so the cluster's sum of gauges counts each once.
 */
export function installFleetMetrics(cmdb: Cmdb, registry: Registry): void {
  new Gauge({ name: 'livery_build_info', help: 'Always 1; the labels say which livery and Node run', labelNames: ['version', 'node'], registers: [registry] }).set(
    { version: liveryVersion, node: process.version },
    1,
  );
  // One CMDB read serves every gauge of a scrape: the first gauge collected reads, the rest reuse it.
  // A CMDB that cannot be read leaves these gauges out (null), so that /metrics still answers
  // and shows the outage (livery_dhcp_cmdb_up) instead of failing whole.
  let stats: FleetStats | null = null;
  let readAt = -Infinity;
  const current = () => {
    if (Date.now() - readAt > 1000) {
      readAt = Date.now();
      try {
        stats = cmdb.fleetStats();
      } catch (err) {
        if (!cmdbUnavailable(err)) throw err;
        stats = null;
      }
    }
    return stats;
  };
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: FleetStats) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const s = current();
        if (s) fill(this, s);
      },
    });
  gauge('livery_machines', 'Machines in the CMDB by state', ['state'], (g, s) => s.machinesByState.forEach((r) => g.set({ state: r.state }, r.n)));
  gauge('livery_leases', 'DHCP leases by subnet and state (expired ones included until reused)', ['subnet', 'state'], (g, s) =>
    s.leasesBySubnet.forEach((r) => g.set({ subnet: r.subnet, state: r.state }, r.n)),
  );
  gauge('livery_pool_addresses', 'Addresses in each subnet\'s dynamic pools', ['subnet'], (g, s) => s.pools.forEach((p) => g.set({ subnet: p.subnet }, p.size)));
  gauge('livery_pool_addresses_leased', 'Pool addresses a live (offered or bound, unexpired) lease holds', ['subnet'], (g, s) => s.pools.forEach((p) => g.set({ subnet: p.subnet }, p.leased)));
  gauge('livery_catalog_images', 'Images in the catalog', [], (g, s) => g.set(s.images));
  gauge('livery_catalog_bytes', 'Bytes of the distinct blobs the catalog\'s images need', [], (g, s) => g.set(s.catalogBytes));
}
