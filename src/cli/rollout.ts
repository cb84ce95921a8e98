import type { Command } from 'commander';
import type { Rollout } from '../cmdb/rollouts.js';
import { clientFor, globals } from './context.js';
import { wholeNumber } from './numbers.js';
import { printJson, printRecord, printTable } from './output.js';

interface ShownMachine {
  hostname: string | null;
  mac: string | null;
  phase: 'forward' | 'back';
  state: string;
  since: string;
  cycles: number;
  detail: { reason?: string };
}

interface RolloutDetail extends Rollout {
  waves: { wave: number; state: string; reason: string | null; startedAt: string | null; finishedAt: string | null; soakUntil: string | null; machines: ShownMachine[] }[];
}

interface StartFlags {
  selector: string;
  channel?: string;
  waves?: string;
  maxParallel?: number;
  bootTimeout?: string;
  maxFailures?: string;
  soak?: string;
}

/** A machine's state as `show` prints it: the way back is spelled out, a BMC-less wait named. */
function machineState(m: ShownMachine): string {
  const state = m.state === 'waiting-reboot' ? 'waiting for a reboot' : m.state;
  return m.phase === 'back' ? `back: ${state}` : state;
}

export function showRollout(r: RolloutDetail): void {
  printRecord({
    id: r.id,
    image: r.imageId,
    selector: r.selector,
    channel: r.channel,
    state: r.state,
    reason: r.reason,
    waves: r.targets,
    maxParallel: r.maxParallel,
    bootTimeout: `${r.bootTimeoutMs / 1000} s`,
    maxFailures: r.maxFailures,
    soak: `${r.soakMs / 1000} s`,
    started: r.createdAt,
    updated: r.updatedAt,
  });
  for (const w of r.waves) {
    console.log(`\nwave ${w.wave + 1}: ${w.state}${w.startedAt ? ` (started ${w.startedAt}${w.finishedAt ? `, finished ${w.finishedAt}` : ''})` : ''}${w.state === 'soaking' ? ` until ${w.soakUntil}` : ''}`);
    printTable(
      ['MACHINE', 'MAC', 'STATE', 'SINCE', 'CYCLES', 'WHY'],
      w.machines.map((m) => [m.hostname, m.mac, machineState(m), m.since, m.cycles, m.detail.reason]),
    );
    if (w.reason) console.log(`\nwhy wave ${w.wave + 1} failed:\n${w.reason}`);
  }
}

export function registerRolloutCommands(program: Command): void {
  const rollout = program.command('rollout').description('roll an image out to machines in waves, gated on their health');

  rollout
    .command('start')
    .description('start a rollout (publisher role)')
    .argument('<image>', 'image id (or a unique prefix of it), NAME@CHANNEL or NAME:VERSION')
    .requiredOption('--selector <k=v,...>', 'machines: label equalities, comma separated (role=kvm,site=par1)')
    .option('--channel <channel>', 'move this channel of the image to it when the last wave passes')
    .option('--waves <list>', 'cumulative wave targets: counts and percentages (default 1,10%,50%,100%)')
    .option('--max-parallel <n>', 'machines booting at once (default from tftp.maxTransfers and the HTTP workers)', (v) => wholeNumber('--max-parallel', v, 1, 10_000))
    .option('--boot-timeout <duration>', 'time for a machine to come back healthy (default 10m)')
    .option('--max-failures <n|p%>', 'failures a wave may have and still pass (default 0)')
    .option('--soak <duration>', 'time a wave stays under watch after its last machine is healthy (default 2m)')
    .action(async (image: string, flags: StartFlags, cmd: Command) => {
      const r = await clientFor(cmd).request<RolloutDetail>('POST', '/v1/rollouts', { image, ...flags });
      globals(cmd).json ? printJson(r) : showRollout(r);
    });

  rollout
    .command('list')
    .description('list rollouts, newest first')
    .action(async (_flags: unknown, cmd: Command) => {
      const { items } = await clientFor(cmd).get<{ items: Rollout[] }>('/v1/rollouts');
      if (globals(cmd).json) return printJson(items);
      printTable(
        ['ID', 'IMAGE', 'SELECTOR', 'STATE', 'WAVE', 'STARTED', 'REASON'],
        items.map((r) => [r.id, r.imageId, r.selector, r.state, r.wave + 1, r.createdAt, r.reason]),
      );
    });

  rollout
    .command('show')
    .description("a rollout's waves, each machine's state and time, and why a wave failed")
    .argument('<id>')
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const r = await clientFor(cmd).get<RolloutDetail>(`/v1/rollouts/${encodeURIComponent(id)}`);
      globals(cmd).json ? printJson(r) : showRollout(r);
    });

  const actions: [string, string][] = [
    ['pause', 'start no new power cycles (boots under way are still watched)'],
    ['resume', 'carry on with a paused rollout'],
    ['abort', 'stop where it is, changing nothing more'],
    ['rollback', 'point every machine the rollout changed back at its previous image and power-cycle it'],
  ];
  for (const [action, description] of actions) {
    rollout
      .command(action)
      .description(`${description} (operator role)`)
      .argument('<id>')
      .action(async (id: string, _flags: unknown, cmd: Command) => {
        const r = await clientFor(cmd).request<RolloutDetail>('POST', `/v1/rollouts/${encodeURIComponent(id)}/${action}`);
        globals(cmd).json ? printJson(r) : showRollout(r);
      });
  }
}
