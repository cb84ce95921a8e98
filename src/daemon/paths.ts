import { join } from 'node:path';

/** The database file inside a data dir; the CLI's offline commands open the same file. */
export const databasePath = (dataDir: string) => join(dataDir, 'livery.db');
