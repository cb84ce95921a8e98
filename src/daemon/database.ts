import { readFileSync } from 'node:fs';
import { ConfigError, type Config } from '../config/index.js';
import type { CmdbTarget } from '../cmdb/index.js';
import { databasePath } from './paths.js';

/**
 * Where this installation's CMDB lives, from `database.url` (and its password, from
 * `database.passwordFile` or LIVERY_DATABASE_PASSWORD): PostgreSQL when a URL is set, else the
 * SQLite file in the data dir. A password written into the URL is refused: the URL is shown in
 * logs, `--check-config` and process listings, a password never is.
 */
export function cmdbTarget(config: Config): CmdbTarget {
  const { url, passwordFile } = config.database;
  if (url === '') return { engine: 'sqlite', path: databasePath(config.dataDir) };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('database.url: not a URL; expected postgres://USER@HOST:PORT/DATABASE');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(`database.url: ${parsed.protocol} is not a database livery knows; expected postgres://USER@HOST:PORT/DATABASE (or leave it empty for SQLite in dataDir)`);
  }
  if (parsed.password) throw new ConfigError('database.url: holds a password; put it in the file database.passwordFile names, or in LIVERY_DATABASE_PASSWORD');
  let password = process.env.LIVERY_DATABASE_PASSWORD;
  if (passwordFile !== '') {
    try {
      password = readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`database.passwordFile: cannot read ${passwordFile}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
  return { engine: 'postgres', url, password };
}
