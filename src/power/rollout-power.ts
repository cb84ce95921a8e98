import type { Cmdb } from '../cmdb/index.js';
import type { RolloutPower } from '../rollout/power.js';
import type { PowerService } from './service.js';

/**
 * The rollout engine's power control through the machines' BMCs: a machine has one when the
 * CMDB holds its BMC record, and a cycle is the power service's (next boot from the network,
 * bounded and retried, an event and an audit row), with the rollout as its actor.
 */
export function bmcRolloutPower(cmdb: Cmdb, power: PowerService): RolloutPower {
  return {
    hasBmc: (machine) => cmdb.bmcs.get(machine.id) !== null,
    cycle: async (machine) => {
      const [result] = await power.act([machine], 'cycle', 'rollout');
      if (!result?.ok) throw new Error(result?.error ?? `power cycle of machine ${machine.id} gave no result`);
    },
  };
}
