import { Option, type Command } from 'commander';
import { ConfigError, loadConfig } from '../config/index.js';
import { configOption, dataDirOption } from './config-options.js';

interface ServeFlags {
  config?: string;
  dataDir?: string;
  httpListen?: string;
  database?: string;
  dhcp?: boolean;
  tftp?: boolean;
  checkConfig?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the DHCP, TFTP and HTTP servers')
    .addOption(configOption())
    .addOption(dataDirOption())
    .addOption(new Option('--database <url>', 'the CMDB on PostgreSQL: postgres://USER@HOST:PORT/DB, password in database.passwordFile or LIVERY_DATABASE_PASSWORD (default: SQLite in the data dir)').env('LIVERY_DATABASE_URL'))
    .addOption(new Option('--http-listen <host:port>', 'HTTP address (default 127.0.0.1:8080)').env('LIVERY_HTTP_LISTEN'))
    .option('--no-dhcp', 'do not run the DHCP server even if configured')
    .option('--no-tftp', 'do not run the TFTP server')
    .option('--check-config', 'validate the configuration, print it as livery resolved it, and exit')
    .action(async (flags: ServeFlags) => {
      const overrides: Record<string, unknown> = {
        dataDir: flags.dataDir,
        database: flags.database !== undefined ? { url: flags.database } : undefined,
        http: flags.httpListen ? { listen: flags.httpListen } : undefined,
        dhcp: flags.dhcp === false ? { enabled: false } : undefined,
        tftp: flags.tftp === false ? { enabled: false } : undefined,
      };
      let config;
      try {
        config = loadConfig(flags.config, overrides);
      } catch (err) {
        if (err instanceof ConfigError) {
          console.error(`livery: ${err.message}`);
          process.exit(2);
        }
        throw err;
      }
      if (flags.checkConfig) {
        console.log(JSON.stringify(config, null, 2));
        console.error('livery: configuration is valid');
        return;
      }
      // Loaded here so that client commands do not pay for the servers' start-up.
      const [{ startLivery, DataDirLockedError }, { createLogger }] = await Promise.all([import('../daemon/index.js'), import('../log.js')]);
      const logger = createLogger(config.log.level);
      let livery;
      try {
        livery = await startLivery(config, logger);
      } catch (err) {
        if (err instanceof DataDirLockedError) {
          console.error(`livery: ${err.message}`);
          process.exit(1);
        }
        throw err;
      }
      console.error(`livery is serving ${livery.url} (data dir ${config.dataDir})`);
      if (livery.bootstrapToken) {
        console.error(
          `first start: created an admin token (also saved to ${config.dataDir}/admin.token):\n\n` +
            `  export LIVERY_URL=${livery.url}\n  export LIVERY_TOKEN=${livery.bootstrapToken}\n`,
        );
      }
      const stop = async (signal: string) => {
        logger.info({ signal }, 'shutting down');
        await livery.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
