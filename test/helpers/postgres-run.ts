import { startPostgres } from './postgres.js';
import { POSTGRES_RUN_ENV } from './test-database.js';

/**
 * vitest's global setup for the server tests' PostgreSQL run (vitest.pg.config.ts): one
 * throwaway cluster for the run, named to the test files through the environment; stopped and
 * removed when the run ends.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const pg = await startPostgres();
  process.env[POSTGRES_RUN_ENV] = JSON.stringify({ url: pg.socketUrl, passwordFile: pg.passwordFile });
  return () => pg.stop();
}
