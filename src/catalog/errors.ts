import { CmdbError } from '../cmdb/errors.js';

const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** How an entry is named in messages: bare when harmless, quoted when it holds odd characters. */
export const entryLabel = (name: string): string => (PLAIN.test(name) ? name : JSON.stringify(name));

/**
 * A bundle the catalog refuses (HTTP 400). The message names the entry and the problem, e.g.
 * `entry "../x": path escapes the bundle`; nothing of the bundle is kept.
 */
export class BundleError extends CmdbError {
  override name = 'BundleError';
  constructor(entry: string | null, problem: string) {
    const where = entry === null ? 'bundle' : `entry ${entryLabel(entry)}`;
    super('invalid', where, `${where}: ${problem}`);
  }
}

/**
 * The bundle's image, or its name:version, is already in the catalog (HTTP 409). `identical`
 * says the catalog already holds exactly this image, so a pull is done; otherwise the message
 * names both images.
 */
export class DuplicateImageError extends CmdbError {
  override name = 'DuplicateImageError';
  constructor(
    readonly existingId: string,
    readonly identical: boolean,
    field: 'id' | 'version',
    message: string,
  ) {
    super('conflict', field, message);
  }
}
