import { Command } from 'commander';
import { liveryVersion } from '../version.js';
import { registerAssignCommands } from './assign.js';
import { registerAuditCommand } from './audit.js';
import { registerBackupCommands } from './backup.js';
import { registerCompletionCommand } from './completion.js';
import { registerDbCommands } from './db.js';
import { DEFAULT_URL } from './context.js';
import { EXAMPLES } from './examples.js';
import { registerImageCommands } from './image.js';
import { registerLeaseCommands } from './lease.js';
import { registerMachineCommands } from './machine.js';
import { registerPowerCommands } from './power.js';
import { registerRolloutCommands } from './rollout.js';
import { registerServeCommand } from './serve.js';
import { registerStatusCommand } from './status.js';
import { registerSubnetCommands } from './subnet.js';
import { registerTokenCommands } from './token.js';
import { registerVmCommands } from './vm.js';

/** The whole command tree, without parsing anything: main.ts runs it, tests read it. */
export function buildProgram(): Command {
  const program = new Command('livery')
    .description('diskless PXE boot server and live-image catalog')
    .version(liveryVersion, '-V, --version')
    .option('--url <url>', `livery server (env LIVERY_URL, default ${DEFAULT_URL})`)
    .option('--token <token>', 'API token (env LIVERY_TOKEN)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride();
  for (const register of [
    registerServeCommand,
    registerMachineCommands,
    registerPowerCommands,
    registerAssignCommands,
    registerImageCommands,
    registerRolloutCommands,
    registerSubnetCommands,
    registerLeaseCommands,
    registerTokenCommands,
    registerStatusCommand,
    registerBackupCommands,
    registerDbCommands,
    registerAuditCommand,
    registerCompletionCommand,
    registerVmCommands,
  ]) {
    register(program);
  }
  addExamples(program, []);
  return program;
}

function addExamples(cmd: Command, path: string[]): void {
  const lines = EXAMPLES[path.join(' ')];
  if (lines) cmd.addHelpText('after', `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  ${l}`).join('\n')}`);
  for (const sub of cmd.commands) addExamples(sub, [...path, sub.name()]);
}
