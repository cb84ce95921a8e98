import type { Command } from 'commander';
import type { Assignment } from '../cmdb/assignments.js';
import { clientFor, globals } from './context.js';
import { wholeNumber } from './numbers.js';
import { printJson, printTable } from './output.js';

/** `livery assign add|list|rm`: images for groups of machines, by selector. */
export function registerAssignCommands(program: Command): void {
  const assign = program.command('assign').description('assign images to machines by selector (a machine\'s own image and pin come first)');

  assign
    .command('add')
    .description('machines matching the selector boot this image (unless they have their own)')
    .requiredOption('--selector <selector>', 'e.g. role=kvm,site=par1 or role in (kvm,gpu); keys site and subnet are the machine\'s, others labels')
    .requiredOption('--image <name[@channel]>', 'image name and channel (default stable)')
    .option('--priority <n>', 'higher wins; equal priority: more terms, then the older rule', (v) => wholeNumber('--priority', v, -1_000_000, 1_000_000))
    .action(async (flags: { selector: string; image: string; priority?: number }, cmd: Command) => {
      const a = await clientFor(cmd).request<Assignment>('POST', '/v1/assignments', flags);
      globals(cmd).json ? printJson(a) : console.log(`assignment #${a.id}: ${a.selector} -> ${a.image.name}@${a.image.channel} (priority ${a.priority})`);
    });

  assign
    .command('list')
    .description('the rules, in the order they are tried')
    .action(async (_flags: unknown, cmd: Command) => {
      const { items } = await clientFor(cmd).get<{ items: Assignment[] }>('/v1/assignments');
      if (globals(cmd).json) return printJson(items);
      printTable(['ID', 'PRIORITY', 'SELECTOR', 'IMAGE', 'CREATED'], items.map((a) => [a.id, a.priority, a.selector, `${a.image.name}@${a.image.channel}`, a.createdAt]));
    });

  assign
    .command('rm')
    .description('remove a rule')
    .argument('<id>', 'rule id (from assign list)')
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const a = await clientFor(cmd).request<Assignment>('DELETE', `/v1/assignments/${encodeURIComponent(id)}`);
      globals(cmd).json ? printJson(a) : console.log(`removed assignment #${a.id} (${a.selector})`);
    });
}
