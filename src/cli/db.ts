import { Option, type Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/index.js';
import { configOption, dataDirOption } from './config-options.js';
import { globals } from './context.js';
import { printJson, printRecord, printTable } from './output.js';

interface Flags {
  config?: string;
  dataDir?: string;
  database?: string;
}

const databaseOption = () =>
  new Option('--database <url>', 'postgres://USER@HOST:PORT/DB (default: the config\'s database.url, else SQLite in the data dir)').env('LIVERY_DATABASE_URL');

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('the CMDB itself: its schema, and moving it to PostgreSQL');

  db.command('migrate')
    .description('bring the CMDB\'s schema up to date (serve does this at start) and print its version')
    .addOption(configOption())
    .addOption(dataDirOption())
    .addOption(databaseOption())
    .action(async (flags: Flags, cmd: Command) => {
      const [{ openCmdbAt, redactUrl }, { cmdbTarget }] = await Promise.all([import('../cmdb/index.js'), import('../daemon/database.js')]);
      const config = loadConfig(flags.config, { dataDir: flags.dataDir, database: flags.database !== undefined ? { url: flags.database } : undefined });
      const target = cmdbTarget(config);
      const cmdb = openCmdbAt(target);
      try {
        const out = {
          database: target.engine === 'sqlite' ? target.path : redactUrl(target.url),
          engine: target.engine,
          schema: cmdb.schemaVersion(),
          backup: cmdb.migrationBackup,
        };
        globals(cmd).json ? printJson(out) : printRecord(out);
      } finally {
        cmdb.close();
      }
    });

  db.command('copy')
    .description('copy a SQLite CMDB into an empty PostgreSQL database, then check every row of every table on both sides')
    .requiredOption('--from <sqlite:PATH>', 'the SQLite database file (livery.db in the data dir)')
    .requiredOption('--to <postgres://URL>', 'the PostgreSQL database, without a password')
    .option('--password-file <file>', 'the PostgreSQL password (else LIVERY_DATABASE_PASSWORD)')
    .action(async (flags: { from: string; to: string; passwordFile?: string }, cmd: Command) => {
      if (!flags.from.startsWith('sqlite:')) throw new Error(`--from: expected sqlite:PATH, got ${JSON.stringify(flags.from)}`);
      const [{ openCmdb, redactUrl }, { cmdbTarget }, { copyCmdbToPostgres }] = await Promise.all([
        import('../cmdb/index.js'),
        import('../daemon/database.js'),
        import('../cmdb/postgres/copy.js'),
      ]);
      const config = loadConfig(undefined, { database: { url: flags.to, passwordFile: flags.passwordFile ?? '' } });
      const target = cmdbTarget(config);
      if (target.engine !== 'postgres') throw new Error('--to: expected postgres://USER@HOST:PORT/DB');
      const source = openCmdb(resolve(flags.from.slice('sqlite:'.length)));
      try {
        const tables = copyCmdbToPostgres(source, target);
        if (globals(cmd).json) return printJson({ from: flags.from, to: redactUrl(target.url), tables });
        printTable(['TABLE', 'ROWS', 'DIGEST'], tables.map((t) => [t.table, t.rows, t.digest]));
        console.error(`copied and checked ${tables.reduce((n, t) => n + t.rows, 0)} rows into ${redactUrl(target.url)}`);
      } finally {
        source.close();
      }
    });
}
