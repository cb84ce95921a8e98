import type { Machine } from '../cmdb/types.js';

/**
 * What a rollout needs from power control: whether a machine has a BMC, and a power cycle
 * that boots it from the network next. The daemon hands the engine the BMC drivers; a machine
 * without a BMC is pinned and waits for someone (or something) to reboot it.
 */
export interface RolloutPower {
  hasBmc(machine: Machine): boolean;
  /** Sets the next boot device and power-cycles; rejects with an error naming the BMC and its answer. */
  cycle(machine: Machine, opts: { bootDevice: 'pxe' }): Promise<void>;
}
