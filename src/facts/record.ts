import type { Cmdb } from '../cmdb/index.js';
import type { LivEvent, Machine } from '../cmdb/types.js';
import type { Config } from '../config/index.js';
import { hardwareDrift, type FactChange } from './drift.js';
import { flattenFacts } from './flat.js';
import type { Facts, FactsReport } from './types.js';

/** The label a machine whose hardware changed gets (facts.onDrift label or retire). */
export const DRIFT_LABEL = { key: 'drift', value: 'hardware' } as const;

/** Whether new rollouts leave this machine out: facts.onDrift is retire and it carries the drift label. */
export const heldByDrift = (m: Pick<Machine, 'labels'>, config: Config): boolean =>
  config.facts.onDrift === 'retire' && m.labels[DRIFT_LABEL.key] === DRIFT_LABEL.value;

export interface RecordedFacts {
  /** What changed since the previous boot that reported facts ([] also when there was none). */
  changes: FactChange[];
  /** The machine went from discovered to registered: it was commissioned by this report. */
  commissioned: boolean;
}

/**
 * Stores one boot's facts (the boot whose phone-home is `booted`) in one transaction: the row,
 * the machine's latest flattened set, and, the first time a boot reports, what follows from it:
 * a discovered machine that booted the commission image becomes registered (`commissioned`),
 * with the BMC address it reported recorded when it has no BMC yet (no credentials), and
 * hardware that differs from the previous boot's raises `hardware-changed` and, per
 * facts.onDrift, labels the machine. A repeated report of the same boot (the agent's retries)
 * replaces the row and raises nothing again.
 */
export function recordFacts(cmdb: Cmdb, config: Config, machine: Machine, booted: LivEvent, facts: Facts, report: FactsReport, imageName: string | null, from: string): RecordedFacts {
  return cmdb.tx(() => {
    const repeat = cmdb.facts.ofBoot(machine.id, booted.id) !== null;
    const previous = cmdb.facts.latest(machine.id, booted.id);
    cmdb.facts.put(machine.id, booted.id, booted.imageId, facts, report);
    const flat = flattenFacts(facts);
    cmdb.machines.setFacts(machine.id, flat);
    const changes = previous ? hardwareDrift(previous.facts, facts) : [];
    const event = { mac: booted.mac, machineId: machine.id, imageId: booted.imageId };
    if (repeat) return { changes, commissioned: false };

    cmdb.events.add({ ...event, type: 'facts', detail: { summary: summaryOf(flat), from } });
    const commissioned = machine.state === 'discovered' && imageName === config.facts.commissionImage;
    if (commissioned) {
      const target = booted.mac ?? String(machine.id);
      cmdb.machines.update(machine.id, { state: 'registered' });
      cmdb.audit.record('livery:facts', 'machine.commission', target, { summary: summaryOf(flat) });
      // Its address only: the credentials are the operator's to set, and a BMC already set stays as it is.
      const bmcAddress = facts.bmc?.address;
      const bmcRecorded = bmcAddress ? cmdb.bmcs.recordFound(machine.id, bmcAddress) : false;
      if (bmcRecorded) cmdb.audit.record('livery:facts', 'machine.bmc.found', target, { driver: 'ipmi', address: bmcAddress, mac: facts.bmc?.mac ?? null });
      cmdb.events.add({ ...event, type: 'commissioned', detail: { summary: summaryOf(flat), bmc: facts.bmc, bmcRecorded } });
    }
    if (changes.length > 0) {
      const action = config.facts.onDrift;
      cmdb.events.add({ ...event, type: 'hardware-changed', detail: { changes, previousBoot: previous!.bootEventId, onDrift: action } });
      if (action !== 'off' && machine.labels[DRIFT_LABEL.key] !== DRIFT_LABEL.value) {
        cmdb.machines.update(machine.id, { labels: { ...machine.labels, [DRIFT_LABEL.key]: DRIFT_LABEL.value } });
        cmdb.audit.record('livery:facts', 'machine.drift', booted.mac ?? String(machine.id), { changes, onDrift: action });
      }
    }
    return { changes, commissioned };
  });
}

/** The few facts an event line shows. */
const summaryOf = (flat: Record<string, string | number>) => {
  const keys = ['cpu.threads', 'memory_gb', 'disks.count', 'nics.count', 'bmc.address'];
  return Object.fromEntries(keys.filter((k) => flat[k] !== undefined).map((k) => [k, flat[k]]));
};
