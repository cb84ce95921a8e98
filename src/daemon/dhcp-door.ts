import type { Registry } from 'prom-client';
import { bootStep, classifyDhcpClient, decide, type ClientFacts } from '../boot/index.js';
import { MachineCache, type BatchOutcome, type BatchWriter, type Cmdb } from '../cmdb/index.js';
import type { ImageSelector } from '../cmdb/types.js';
import { nodeName, type Config } from '../config/index.js';
import { startDhcpServer, type DhcpBootPath } from '../dhcp/index.js';
import type { Logger } from '../log.js';

interface DhcpDoorContext {
  cmdb: Cmdb;
  config: Config;
  registry: Registry;
  logger: Logger;
}

/** Starts DHCP only when configured (never by default). */
export async function startDhcpDoor(ctx: DhcpDoorContext): Promise<{ close(): Promise<void> } | null> {
  if (!ctx.config.dhcp.enabled) return null;
  const writer = ctx.cmdb.openWriter();
  const server = await startDhcpServer({ config: ctx.config, registry: ctx.registry, logger: ctx.logger, boot: dhcpBootPath(ctx.cmdb, ctx.config, writer) }).catch(async (err: unknown) => {
    await writer.close();
    throw err;
  });
  return {
    close: async () => {
      await server.close();
      await writer.close();
    },
  };
}

/**
 * Which nodes answer DHCP now, from their heartbeats, read at most once a second. While the
 * CMDB cannot be read the last answer stands: leases cannot be written then either.
 */
function liveNodes(cmdb: Cmdb, config: Config): (name: string) => boolean {
  const deadMs = config.node.deadAfterSeconds * 1000;
  let live = new Set<string>();
  let readAt = -Infinity;
  return (name) => {
    const now = Date.now();
    if (now - readAt >= 1000) {
      readAt = now;
      try {
        live = new Set(cmdb.nodes.list().filter((n) => n.dhcp && now - Date.parse(n.heartbeatAt) < deadMs).map((n) => n.name));
      } catch {
        // Kept as it was: see above.
      }
    }
    return live.has(name);
  };
}

/**
 * The DHCP server's view of the boot decision and the CMDB. Machines come from a cache (a
 * lookup per packet); the writes of each batch are committed on the CMDB's writer thread,
 * and the machines a batch registered are taken into the cache with its commit.
 */
export function dhcpBootPath(cmdb: Cmdb, config: Config, writer: BatchWriter): DhcpBootPath {
  // Given the CMDB's image stores too, so the image each selector names, and which images this
  // node holds, are kept with the machines.
  const machines = new MachineCache(cmdb.machines, cmdb.assignments, cmdb);
  // Every commit handed over while a batch was in flight joins the next one and resolves with
  // that batch's one outcome, all in a row: its machines are taken in once, not once per commit
  // (which made this loop's work grow with commits × machines per batch under load).
  let takenIn: BatchOutcome | null = null;
  const takeIn = (outcome: BatchOutcome) => {
    if (outcome !== takenIn) {
      takenIn = outcome;
      machines.remember(outcome);
    }
    return outcome.refused;
  };
  const rules = () => machines.rules();
  const node = nodeName(config);
  const imageReady = (imageId: string) => machines.imageReady(imageId, node);
  const resolveImage = (selector: ImageSelector) => machines.resolveImage(selector);
  return {
    machine: (mac) => machines.byCanonicalMac(mac),
    plan: (client, { machine, subnetContaining }) => {
      const { firmware, arch } = classifyDhcpClient(client);
      const facts: ClientFacts = { mac: client.mac, firmware, arch, archCode: client.archCode, subnetHint: client.subnetHint, door: 'dhcp' };
      // A literal of one shape, not a spread: this runs twice per exchange.
      return decide(facts, { cmdb, config, subnetContaining, machine, rules, resolveImage, imageReady });
    },
    step: bootStep,
    subnets: () => cmdb.subnets.list(),
    leasesIn: (subnetId) => cmdb.leases.inSubnet(subnetId),
    leasesChangedSince: (since) => cmdb.leases.changedSince(since),
    leaseOf: (mac, subnetId) => cmdb.leases.forMac(mac, subnetId),
    nodeAlive: liveNodes(cmdb, config),
    commit: (ops) => writer.commit(ops).then(takeIn),
  };
}
