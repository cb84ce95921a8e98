import { hasCredentials } from '../cmdb/bmcs.js';
import type { Cmdb } from '../cmdb/index.js';
import type { RolloutPower } from '../rollout/power.js';
import type { PowerService } from './service.js';

/**
 * The rollout engine's power control through the machines' BMCs: a machine has one when the
 * CMDB holds its BMC record with credentials (one commissioning found has none yet), and a
 * cycle is the power service's (next boot from the network, bounded and retried, an event and
 * an audit row), with the rollout as its actor.
 */
export function bmcRolloutPower(cmdb: Cmdb, power: PowerService): RolloutPower {
  return {
    hasBmc: (machine) => {
      const bmc = cmdb.bmcs.get(machine.id);
      return bmc !== null && hasCredentials(bmc);
    },
    cycle: async (machine) => {
      const [result] = await power.act([machine], 'cycle', 'rollout');
      if (!result?.ok) throw new Error(result?.error ?? `power cycle of machine ${machine.id} gave no result`);
    },
  };
}
