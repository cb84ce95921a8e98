import type { Command } from 'commander';
import type { PowerResult } from '../power/service.js';
import { POWER_ACTIONS } from '../power/types.js';
import { CliError } from './client.js';
import { clientFor, globals } from './context.js';
import { printJson, printTable } from './output.js';

/** `livery power ACTION MACHINE... | --selector S`: through each machine's BMC; exits 1 if any failed. */
export function registerPowerCommands(program: Command): void {
  program
    .command('power')
    .description('power status, on, off, cycle or reset through the machines\' BMCs (on, cycle and reset boot from the network next)')
    .argument('<action>', POWER_ACTIONS.join(' | '))
    .argument('[machines...]', 'MAC, hostname or id')
    .option('--selector <selector>', 'every machine matching, e.g. role=kvm,site=par1 or role in (kvm,gpu)')
    .action(async (action: string, machines: string[], flags: { selector?: string }, cmd: Command) => {
      if (!(POWER_ACTIONS as readonly string[]).includes(action)) throw new CliError(`action must be one of ${POWER_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`);
      if ((machines.length > 0) === (flags.selector !== undefined)) throw new CliError('name machines or give --selector (one of the two)');
      const body = flags.selector !== undefined ? { action, selector: flags.selector } : { action, machines };
      const r = await clientFor(cmd).request<{ ok: number; failed: number; results: PowerResult[] }>('POST', '/v1/power', body);
      if (globals(cmd).json) printJson(r);
      else {
        printTable(
          ['MACHINE', 'BMC', 'WAS', 'RESULT'],
          r.results.map((x) => [x.machine, x.bmc, x.state, x.ok ? (action === 'status' ? x.state : 'ok') : x.error]),
        );
        for (const x of r.results) if (x.warning) console.error(`warning: ${x.machine}: ${x.warning}`);
        console.log(`${action}: ${r.ok} ok, ${r.failed} failed`);
      }
      if (r.failed > 0) process.exitCode = 1;
    });
}
