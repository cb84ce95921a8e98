import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/index.js';
import { configOption, dataDirOption } from './config-options.js';
import { globals } from './context.js';
import { printJson, printRecord } from './output.js';

interface Flags {
  config?: string;
  dataDir?: string;
}
/** The data dir as `serve` would use it: the flag (or LIVERY_DATA_DIR), else the config file's, else the default. */
const dataDirOf = (flags: Flags) => resolve(loadConfig(flags.config, { dataDir: flags.dataDir }).dataDir);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .description('write the CMDB, the blobs its images need and the BMC key to one tar (safe while livery serves)')
    .addOption(configOption())
    .addOption(dataDirOption('the data dir to back up'))
    .option('--to <file>', 'the backup file (default livery-backup-<time>.tar here)')
    .action(async (flags: Flags & { to?: string }, cmd: Command) => {
      if (loadConfig(flags.config, {}).database.url) {
        throw new Error('the CMDB is on PostgreSQL (database.url): back the database up with pg_dump or a replica, and the data dir\'s blobs/ and secret.key as files (README "Running more than one node")');
      }
      const { writeBackup } = await import('../backup/write.js');
      const file = resolve(flags.to ?? `livery-backup-${new Date().toISOString().replace(/[:.]/g, '-')}.tar`);
      const s = await writeBackup(dataDirOf(flags), file);
      if (globals(cmd).json) return printJson(s);
      printRecord({ file: s.file, schema: s.schemaVersion, database: mib(s.databaseBytes), blobs: `${s.blobs} (${mib(s.blobBytes)})` });
    });

  program
    .command('restore <file>')
    .description('restore a backup into an empty data dir, checking every file against its sha256 first')
    .addOption(configOption())
    .addOption(dataDirOption('the empty data dir to restore into'))
    .action(async (file: string, flags: Flags, cmd: Command) => {
      const { restoreBackup } = await import('../backup/restore.js');
      const s = await restoreBackup(resolve(file), dataDirOf(flags));
      if (globals(cmd).json) return printJson(s);
      printRecord({ restored: s.dataDir, schema: s.schemaVersion, files: s.files, size: mib(s.bytes) });
    });
}
