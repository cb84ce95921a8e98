import type { Cmdb } from '../cmdb/index.js';
import type { Machine } from '../cmdb/types.js';

/**
 * Rollout transitions on the event bus (SSE, and in the machine's event log for its trace):
 * `rollout` for the rollout itself, `rollout-wave` for a wave, `rollout-machine` for one
 * machine's step. Written in the same transaction as the state change they announce.
 */
export function rolloutEvent(cmdb: Cmdb, rolloutId: number, imageId: string, detail: Record<string, unknown>): void {
  cmdb.events.add({ type: 'rollout', imageId, detail: { rollout: rolloutId, ...detail } });
}

export function waveEvent(cmdb: Cmdb, rolloutId: number, imageId: string, wave: number, detail: Record<string, unknown>): void {
  cmdb.events.add({ type: 'rollout-wave', imageId, detail: { rollout: rolloutId, wave: wave + 1, ...detail } });
}

export function machineEvent(cmdb: Cmdb, rolloutId: number, machine: Machine, imageId: string | null, detail: Record<string, unknown>): void {
  cmdb.events.add({ type: 'rollout-machine', mac: machine.macs[0] ?? null, machineId: machine.id, imageId, detail: { rollout: rolloutId, machine: machine.hostname ?? machine.id, ...detail } });
}
