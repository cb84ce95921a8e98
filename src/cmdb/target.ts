/** Where the CMDB lives: a SQLite file, or a PostgreSQL database (its password given apart from the URL). */
export type CmdbTarget = { engine: 'sqlite'; path: string } | PostgresTarget;
export interface PostgresTarget {
  engine: 'postgres';
  url: string;
  password?: string;
}

/** A URL without the password it may carry: for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable database URL)';
  }
}
