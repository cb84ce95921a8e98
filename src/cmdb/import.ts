import { CmdbError, invalid } from './errors.js';
import { parseKeyValues } from './key-values.js';
import type { Machine, MachineInput } from './types.js';
import type { Cmdb } from './index.js';
import type { BmcInput } from './bmcs.js';
import type { SecretBox } from './secret-box.js';

/** One row of an import file: its machine, or why it could not even be read. */
export type ImportRow =
  /** line: 1-based line in the source file (CSV counts the header as line 1). bmc: the machine's BMC, if the row sets one. */
  { line: number; input: MachineInput; bmc?: BmcInput | null } | { line: number; error: string };

export interface ImportResult {
  created: number;
  updated: number;
  unchanged: number;
}

export class ImportError extends Error {
  override name = 'ImportError';
  constructor(readonly problems: { line: number; error: string }[]) {
    super(`import rejected, nothing was changed: ${problems.length} bad row(s)`);
  }
}

const SIMPLE_COLUMNS = ['hostname', 'ip', 'site', 'uuid', 'subnet', 'state'] as const;
const SPLIT = /[;\s]+/;

/**
 * Maps one CSV record to a machine. Columns: mac (several separated by ';' or spaces),
 * hostname, ip, site, uuid, subnet, state, image, channel, image_id, kernel_args,
 * labels or label.<key>, vars or var.<name> (a labels/vars cell is a key-values.ts list).
 */
export function csvRecordToInput(record: Record<string, string>): MachineInput {
  const input: MachineInput = {};
  for (const [rawKey, rawValue] of Object.entries(record)) {
    const key = rawKey.trim().toLowerCase();
    const value = (rawValue ?? '').trim();
    if (key === 'mac' || key === 'macs') input.macs = value.split(SPLIT).filter(Boolean);
    else if ((SIMPLE_COLUMNS as readonly string[]).includes(key)) (input as Record<string, unknown>)[key] = value === '' ? null : value;
    else if (key === 'image') input.image = { ...input.image, name: value || null };
    else if (key === 'channel') input.image = { ...input.image, channel: value || null };
    else if (key === 'image_id') input.image = { ...input.image, id: value || null };
    else if (key === 'kernel_args') input.kernelArgs = value;
    else if (key === 'labels') input.labels = { ...input.labels, ...parseKeyValues('labels', value) };
    else if (key === 'vars') input.vars = { ...input.vars, ...parseKeyValues('vars', value) };
    else if (key.startsWith('label.')) {
      if (value !== '') input.labels = { ...input.labels, [rawKey.trim().slice(6)]: value };
    } else if (key.startsWith('var.')) {
      if (value !== '') input.vars = { ...input.vars, [rawKey.trim().slice(4)]: value };
    } else throw invalid(rawKey, 'unknown column');
  }
  if (input.state === null) delete input.state;
  return input;
}

/** True when applying `input` to `m` would change nothing (so re-imports are no-ops). */
function sameAs(m: Machine, input: MachineInput): boolean {
  const eq = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  const canon = (o: Record<string, string> | undefined) => Object.fromEntries(Object.entries(o ?? {}).sort());
  if (input.hostname !== undefined && !eq(input.hostname?.toLowerCase(), m.hostname)) return false;
  for (const k of ['ip', 'site', 'subnet', 'state'] as const) if (input[k] !== undefined && !eq(input[k], m[k])) return false;
  if (input.uuid !== undefined && !eq(input.uuid?.toLowerCase(), m.uuid)) return false;
  if (input.kernelArgs !== undefined && input.kernelArgs.trim() !== m.kernelArgs) return false;
  if (input.labels !== undefined && !eq(canon(input.labels), canon(m.labels))) return false;
  if (input.vars !== undefined && !eq(canon(input.vars), canon(m.vars))) return false;
  if (input.image) {
    for (const k of ['name', 'id'] as const) if (input.image[k] !== undefined && !eq(input.image[k], m.image[k])) return false;
    if (input.image.channel !== undefined && !eq(input.image.channel ?? (m.image.name ? 'stable' : null), m.image.channel)) return false;
  }
  return true;
}

/**
 * Creates or updates machines keyed by their first MAC, all in one transaction. Every row is
 * checked; if any is bad, nothing is written and every bad row is reported with its line.
 */
export function importMachines(cmdb: Cmdb, actor: string, rows: ImportRow[], box?: SecretBox): ImportResult {
  const result: ImportResult = { created: 0, updated: 0, unchanged: 0 };
  const problems: { line: number; error: string }[] = [];
  // Rows are keyed by their first MAC; a savepoint per row lets one bad row be reported
  // without hiding the problems of the rows after it.
  const run = cmdb.db.transaction(() => {
    for (const row of rows) {
      const line = row.line;
      if ('error' in row) {
        problems.push({ line, error: row.error });
        continue;
      }
      const input = row.input;
      const savepoint = `row${line}`;
      cmdb.db.exec(`SAVEPOINT ${savepoint}`);
      try {
        const key = input.macs?.[0];
        if (!key) throw invalid('mac', 'is required');
        const existing = cmdb.machines.findByMac(key);
        if (!existing) {
          const id = cmdb.machines.add({ state: 'registered', ...input });
          if (row.bmc) cmdb.bmcs.set(id, row.bmc, box!);
          result.created++;
        } else if (!row.bmc && sameAs(existing, input) && (input.macs ?? []).every((mac) => cmdb.machines.findByMac(mac)?.id === existing.id)) {
          result.unchanged++;
        } else {
          cmdb.machines.update(existing.id, input);
          if (row.bmc) cmdb.bmcs.set(existing.id, row.bmc, box!);
          result.updated++;
        }
        cmdb.db.exec(`RELEASE ${savepoint}`);
      } catch (err) {
        cmdb.db.exec(`ROLLBACK TO ${savepoint}`);
        cmdb.db.exec(`RELEASE ${savepoint}`);
        if (!(err instanceof CmdbError)) throw err;
        problems.push({ line, error: err.message });
      }
    }
    if (problems.length > 0) throw new ImportError(problems);
    cmdb.audit.record(actor, 'machine.import', `${rows.length} rows`, { ...result });
  });
  run.immediate();
  return result;
}
