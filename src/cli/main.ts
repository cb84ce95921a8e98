#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { CliError } from './client.js';
import { DEFAULT_URL } from './context.js';
import { registerImageCommands } from './image.js';
import { registerLeaseCommands } from './lease.js';
import { registerMachineCommands } from './machine.js';
import { registerRolloutCommands } from './rollout.js';
import { registerPowerCommands } from './power.js';
import { registerAssignCommands } from './assign.js';
import { registerAuditCommand } from './audit.js';
import { registerBackupCommands } from './backup.js';
import { registerServeCommand } from './serve.js';
import { registerStatusCommand } from './status.js';
import { registerSubnetCommands } from './subnet.js';
import { registerTokenCommands } from './token.js';
import { registerVmCommands } from './vm.js';
import { liveryVersion } from '../version.js';

const program = new Command('livery')
  .description('diskless PXE boot server and live-image catalog')
  .version(liveryVersion, '-V, --version')
  .option('--url <url>', `livery server (env LIVERY_URL, default ${DEFAULT_URL})`)
  .option('--token <token>', 'API token (env LIVERY_TOKEN)')
  .option('--json', 'machine-readable output')
  .showHelpAfterError()
  .exitOverride();

registerServeCommand(program);
registerMachineCommands(program);
registerPowerCommands(program);
registerAssignCommands(program);
registerImageCommands(program);
registerRolloutCommands(program);
registerSubnetCommands(program);
registerLeaseCommands(program);
registerTokenCommands(program);
registerStatusCommand(program);
registerBackupCommands(program);
registerAuditCommand(program);
registerVmCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`livery: ${err instanceof CliError || err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
