import { CmdbError, conflict, invalid } from './errors.js';
import { parseKeyValues } from './key-values.js';
import type { Machine, MachineInput } from './types.js';
import type { Cmdb } from './index.js';
import type { BmcInput, CheckedBmc } from './bmcs.js';
import type { CheckedMachine, PendingOwners } from './machine-check.js';
import type { PlanClaims } from './machines.js';
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
 * hostname, ip, site, uuid, subnet, state, image, channel, image_id, kernel_args, secure_boot,
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
    else if (key === 'secure_boot') input.secureBoot = (value || null) as MachineInput['secureBoot'];
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
  for (const k of ['ip', 'site', 'subnet', 'state', 'secureBoot'] as const) if (input[k] !== undefined && !eq(input[k], m[k])) return false;
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

/** The writes an import makes, checked and resolved before the write lock is taken. */
interface Plan {
  creates: CheckedMachine[];
  updates: { id: number; values: CheckedMachine; macsChanged: boolean }[];
  unchanged: number;
  /** The BMCs rows set, by the machine's first MAC: new machines have an id only once written. */
  bmcs: { mac: string; bmc: CheckedBmc }[];
  claims: PlanClaims;
}

// Checking yields to the event loop this often, so an import shares its process with the
// boot path (DHCP, boot scripts, /healthz) instead of stalling it for seconds.
const ROWS_PER_TURN = 500;

/**
 * Creates or updates machines keyed by their first MAC, all or nothing. Every row is checked
 * first, outside any transaction; if any is bad, nothing is written and every bad row is
 * reported with its line. The writes then go in one short transaction, which first makes sure
 * nothing the check relied on changed meanwhile (a conflict, and nothing is written).
 */
export async function importMachines(cmdb: Cmdb, actor: string, rows: ImportRow[], box?: SecretBox): Promise<ImportResult> {
  const plan = await planImport(cmdb, rows, box);
  return cmdb.tx(() => {
    const stale = cmdb.machines.staleness(plan.claims);
    if (stale.length > 0) throw conflict('import', `${stale.slice(0, 10).join('; ')}${stale.length > 10 ? ` (and ${stale.length - 10} more)` : ''}; nothing was changed, retry the import`);
    const now = Date.now();
    cmdb.machines.insertMany(plan.creates, now);
    for (const u of plan.updates) cmdb.machines.write(u.id, u.values, u.macsChanged, now);
    for (const { mac, bmc } of plan.bmcs) cmdb.bmcs.write(cmdb.machines.findByMac(mac)!.id, bmc);
    const result = { created: plan.creates.length, updated: plan.updates.length, unchanged: plan.unchanged };
    cmdb.audit.record(actor, 'machine.import', `${rows.length} rows`, { ...result });
    return result;
  });
}

async function planImport(cmdb: Cmdb, rows: ImportRow[], box?: SecretBox): Promise<Plan> {
  const problems: { line: number; error: string }[] = [];
  const claims: PlanClaims = { macs: new Map(), hostnames: new Map(), ips: new Map(), updatedAt: new Map(), subnetIds: new Set(), imageIds: new Set() };
  const plan: Plan = { creates: [], updates: [], unchanged: 0, bmcs: [], claims };
  // Who claims what among the rows checked so far, named as the conflict messages name them.
  const pending = { macs: new Map<string, string>(), hostnames: new Map<string, string>(), ips: new Map<string, string>() };
  const others: PendingOwners = {
    mac: (mac) => pending.macs.get(mac) ?? null,
    hostname: (hostname) => pending.hostnames.get(hostname) ?? null,
    ip: (ip) => pending.ips.get(ip) ?? null,
  };
  for (const [i, row] of rows.entries()) {
    if (i > 0 && i % ROWS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
    const line = row.line;
    if ('error' in row) {
      problems.push({ line, error: row.error });
      continue;
    }
    const input = row.input;
    try {
      const key = input.macs?.[0];
      if (!key) throw invalid('mac', 'is required');
      const existing = cmdb.machines.findByMac(key);
      if (existing && claims.updatedAt.has(existing.id)) throw conflict('macs', `MAC ${key} is already imported by an earlier row`);
      if (row.bmc) {
        if (!box) throw invalid('bmc', 'this import cannot set BMCs (no secret key to seal their passwords)');
        plan.bmcs.push({ mac: key, bmc: cmdb.bmcs.check(existing?.id ?? null, row.bmc, box) });
      }
      if (existing && !row.bmc && sameAs(existing, input) && (input.macs ?? []).every((mac) => cmdb.machines.findByMac(mac)?.id === existing.id)) {
        plan.unchanged++;
        continue;
      }
      const values = cmdb.machines.check(existing ? input : { state: 'registered', ...input }, existing, others);
      const id = existing?.id ?? null;
      if (existing) {
        plan.updates.push({ id: existing.id, values, macsChanged: input.macs !== undefined });
        claims.updatedAt.set(existing.id, Date.parse(existing.updatedAt));
      } else plan.creates.push(values);
      const name = values.hostname ?? (existing ? String(existing.id) : `on line ${line}`);
      for (const mac of values.macs) {
        claims.macs.set(mac, id);
        pending.macs.set(mac, name);
      }
      if (values.hostname) {
        claims.hostnames.set(values.hostname, id);
        pending.hostnames.set(values.hostname, name);
      }
      if (values.ip) {
        claims.ips.set(values.ip, id);
        pending.ips.set(values.ip, name);
      }
      if (values.subnetId !== null) claims.subnetIds.add(values.subnetId);
      if (values.imageId !== null) claims.imageIds.add(values.imageId);
    } catch (err) {
      if (!(err instanceof CmdbError)) throw err;
      problems.push({ line, error: err.message });
    }
  }
  if (problems.length > 0) throw new ImportError(problems);
  return plan;
}
