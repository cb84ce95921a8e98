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

/** The bundle's (name, version) is already in the catalog (HTTP 409). */
export class DuplicateImageError extends CmdbError {
  override name = 'DuplicateImageError';
  constructor(
    readonly existingId: string,
    /** True when the existing image has exactly the same artifacts: a pull can call it done. */
    readonly identical: boolean,
    label: string,
  ) {
    super('conflict', 'version', `image ${label} is already in the catalog as ${existingId}${identical ? ' (same artifacts)' : ' with different artifacts'}`);
  }
}
