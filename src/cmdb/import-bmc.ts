import { parseBmcUrl, type BmcInput } from './bmcs.js';
import { invalid } from './errors.js';

/** The CSV columns that describe a machine's BMC: bmc (URL), bmc_password, bmc_fingerprint, bmc_verify. */
const COLUMNS = ['bmc', 'bmc_password', 'bmc_fingerprint', 'bmc_verify'];

/**
 * Takes a CSV record's BMC columns out (the rest is the machine), as a BmcInput, or null when
 * the row names no BMC. The password is in the file, never on a command line.
 */
export function takeBmcColumns(record: Record<string, string>): { rest: Record<string, string>; bmc: BmcInput | null } {
  const rest: Record<string, string> = {};
  const cols: Record<string, string> = {};
  for (const [k, v] of Object.entries(record)) {
    const key = k.trim().toLowerCase();
    if (COLUMNS.includes(key)) cols[key] = (v ?? '').trim();
    else rest[k] = v;
  }
  if (!cols.bmc) {
    if (cols.bmc_password || cols.bmc_fingerprint || cols.bmc_verify) throw invalid('bmc', 'bmc_password, bmc_fingerprint and bmc_verify need a bmc URL in the same row');
    return { rest, bmc: null };
  }
  const bmc = parseBmcUrl(cols.bmc);
  if (cols.bmc_password) bmc.password = cols.bmc_password;
  if (cols.bmc_fingerprint) bmc.fingerprint = cols.bmc_fingerprint;
  if (cols.bmc_verify) {
    if (!['true', 'false'].includes(cols.bmc_verify)) throw invalid('bmc_verify', 'must be true or false');
    bmc.verify = cols.bmc_verify === 'true';
  }
  return { rest, bmc };
}

/** A JSON import row's `bmc`: an object of BMC fields, or `{ "url": "ipmi://...", "password": ... }`. */
export function bmcOfJson(value: unknown): BmcInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('bmc', 'must be an object (driver, address, username, password, ... or url, password)');
  const { url, ...fields } = value as Record<string, unknown>;
  if (url === undefined) return fields as BmcInput;
  if (typeof url !== 'string') throw invalid('bmc.url', 'must be a string');
  return { ...parseBmcUrl(url, 'bmc.url'), ...(fields as BmcInput) };
}
