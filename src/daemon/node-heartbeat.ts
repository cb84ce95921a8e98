import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Cmdb } from '../cmdb/index.js';
import { nodeName, type Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { liveryVersion } from '../version.js';

/** The role only one node plays at a time: driving rollouts (two engines would power-cycle a machine twice). */
export const ROLLOUT_ROLE = 'rollouts';

export interface NodeHeartbeat {
  readonly name: string;
  stop(): void;
}


/**
 * Records this node in the CMDB now and every node.heartbeatSeconds, and keeps or takes the
 * rollout role: `leading` is called with true when this node takes it and false when it loses
 * it (it could not renew it in time, so another node may hold it by now). A name another live
 * node holds fails the start.
 */
export function startNodeHeartbeat(cmdb: Cmdb, config: Config, url: string, logger: Logger, leading: (lead: boolean) => void): NodeHeartbeat {
  const { heartbeatSeconds, deadAfterSeconds } = config.node;
  if (deadAfterSeconds < 2 * heartbeatSeconds) throw new Error(`node.deadAfterSeconds (${deadAfterSeconds}) must be at least twice node.heartbeatSeconds (${heartbeatSeconds})`);
  const name = nodeName(config);
  const deadAfterMs = deadAfterSeconds * 1000;
  const beat = {
    name,
    url,
    version: liveryVersion,
    host: hostname(),
    dataDir: resolve(config.dataDir),
    pid: process.pid,
    dhcp: config.dhcp.enabled,
    startedAt: Date.now(),
  };
  // A SQLite CMDB has one node by construction (the data dir lock): rows there from elsewhere
  // came with a restored backup or a copied file, and name no live rival.
  const shared = config.database.url !== '';
  let lead = false;
  let renewedAt = 0;
  let beating = false;
  let stopped = false;
  const renew = (now: number) => {
    cmdb.nodes.beat(beat, shared ? deadAfterMs : 0, now);
    return cmdb.nodes.lead(ROLLOUT_ROLE, name, deadAfterMs, now, !shared);
  };
  const renewed = (held: boolean, now: number) => {
    if (held) renewedAt = now;
    if (held !== lead) {
      lead = held;
      logger.info({ node: name, role: ROLLOUT_ROLE }, held ? 'this node drives rollouts' : 'another node drives rollouts');
      leading(held);
    }
  };
  const start = Date.now();
  renewed(cmdb.tx(() => renew(start)), start);
  const timer = setInterval(() => {
    if (beating) return;
    beating = true;
    const now = Date.now();
    // Through the group commit, which queues for the write lock only briefly and comes back later
    // rather than wait for it: another node's long batch must not hold this node's DHCP loop
    // behind a heartbeat.
    cmdb
      // A beat that commits after stop() would take the role back from the resignation.
      .soon(() => (stopped ? false : renew(now)))
      .then(
        (held) => stopped || renewed(held, now),
        (err: unknown) => {
          if (stopped) return;
          logger.warn({ err, node: name }, 'node heartbeat failed');
          // Unrenewed, the role may be another node's by now: stop acting on it.
          if (lead && Date.now() - renewedAt >= deadAfterMs) {
            lead = false;
            leading(false);
          }
        },
      )
      .finally(() => (beating = false));
  }, heartbeatSeconds * 1000);
  timer.unref();
  return {
    name,
    stop() {
      stopped = true;
      clearInterval(timer);
      if (!lead) return;
      try {
        cmdb.tx(() => cmdb.nodes.resign(ROLLOUT_ROLE, name));
      } catch (err) {
        logger.warn({ err }, 'could not give up the rollout role; another node takes it when it expires');
      }
    },
  };
}
