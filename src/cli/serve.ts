import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/index.js';

interface ServeFlags {
  config?: string;
  dataDir?: string;
  httpListen?: string;
  dhcp?: boolean;
  tftp?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the DHCP, TFTP and HTTP servers')
    .option('--config <file>', 'configuration file (.toml, .yaml)')
    .option('--data-dir <dir>', 'SQLite database, catalog and TFTP root (default ./var)')
    .option('--http-listen <host:port>', 'HTTP address (default 127.0.0.1:8080)')
    .option('--no-dhcp', 'do not run the DHCP server even if configured')
    .option('--no-tftp', 'do not run the TFTP server')
    .action(async (flags: ServeFlags) => {
      const overrides: Record<string, unknown> = {
        dataDir: flags.dataDir,
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
