import type { Command } from 'commander';
import { LEASE_STATES, type LeaseView } from '../cmdb/leases.js';
import { choice } from './choices.js';
import { clientFor, globals } from './context.js';
import { printJson, printTable } from './output.js';

export function registerLeaseCommands(program: Command): void {
  program
    .command('lease')
    .description('DHCP leases')
    .command('list')
    .description('addresses handed out by the DHCP server')
    .option('--subnet <subnet>', 'only this subnet (name or CIDR)')
    .addOption(choice('--state <state>', 'only leases in this state', LEASE_STATES))
    .action(async (flags: { subnet?: string; state?: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (flags.subnet) q.set('subnet', flags.subnet);
      if (flags.state) q.set('state', flags.state);
      const { items } = await clientFor(cmd).get<{ items: LeaseView[] }>(`/v1/leases?${q}`);
      if (globals(cmd).json) return printJson(items);
      printTable(['IP', 'MAC', 'STATE', 'EXPIRES', 'HOSTNAME'], items.map((l) => [l.ip, l.mac, l.state, l.expiresAt, l.hostname]));
    });
}
