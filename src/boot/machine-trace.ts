import type { Cmdb } from '../cmdb/index.js';
import type { Machine } from '../cmdb/types.js';
import { healthOf, type HealthVerdict } from '../health/verdict.js';
import { traceBoots, type BootTrace } from './trace.js';

/** A machine's boots, oldest first, from the events of all its MACs, the last one ending with its health verdict. */
export function machineBoots(cmdb: Cmdb, machine: Machine): BootTrace[] {
  // In the order the doors saw them (`at`, ISO text in one format, so it sorts as text), ids
  // breaking ties: an HTTP process's writer thread commits a script's event up to a commit
  // window after it was served, so a kernel fetched meanwhile from another HTTP process can
  // take the smaller id.
  const events = machine.macs
    .flatMap((mac) => cmdb.events.forMac(mac, 1000))
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id - b.id));
  const boots = traceBoots(events);
  addHealthVerdict(boots, healthOf(cmdb, machine));
  return boots;
}

/**
 * The latest boot's verdict when no report made it: healthy at the phone-home for an image
 * without checks, `unhealthy: no report` once the agent's time is up. Neither is an event (no
 * one is there to write it at that moment), so the trace derives them as it is read.
 */
function addHealthVerdict(boots: BootTrace[], verdict: HealthVerdict): void {
  const last = boots[boots.length - 1];
  if (!last?.complete || last.reached !== 'booted' || verdict.at === null) return;
  if (verdict.state !== 'healthy' && verdict.state !== 'unhealthy') return;
  const event = verdict.reason === 'no report' ? 'no-report' : 'no-checks';
  last.stages.push({ stage: verdict.state, at: verdict.at, lastAt: verdict.at, count: 1, event, detail: { reason: verdict.reason } });
  last.reached = verdict.state;
}
