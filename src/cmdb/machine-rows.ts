/** A machine as the SQLite engine stores it, and the query parts every machine listing shares. */
import type { Dialect } from './sql.js';
import type { Machine, MachineState, SecureBoot } from './types.js';
import { iso, isoOrNull } from './util.js';
import { checkLabels } from './validate.js';

export interface MachineRow {
  id: number;
  hostname: string | null;
  uuid: string | null;
  site: string | null;
  labels: string;
  state: MachineState;
  image_name: string | null;
  image_channel: string | null;
  image_id: string | null;
  kernel_args: string;
  vars: string;
  ip: string | null;
  subnet_id: number | null;
  subnet_name: string | null;
  secure_boot: SecureBoot | null;
  macs: string;
  created_at: number;
  updated_at: number;
  last_seen_at: number | null;
  facts: string | null;
}

export const MACHINE_STATES: readonly MachineState[] = ['discovered', 'registered', 'retired'];

// MACs come back as one ordered, comma-joined column so a list is one query, not N+1.
export function selectMachines(d: Dialect): string {
  return `SELECT m.*, s.name AS subnet_name, ${d.joined('mac', 'machine_macs WHERE machine_id = m.id', 'position')} AS macs
    FROM machines m LEFT JOIN subnets s ON s.id = m.subnet_id`;
}

export function toMachine(r: MachineRow): Machine {
  return {
    id: r.id,
    macs: r.macs ? r.macs.split(',') : [],
    hostname: r.hostname,
    uuid: r.uuid,
    site: r.site,
    labels: JSON.parse(r.labels),
    state: r.state,
    image: { name: r.image_name, channel: r.image_channel, id: r.image_id },
    kernelArgs: r.kernel_args,
    vars: JSON.parse(r.vars),
    ip: r.ip,
    subnet: r.subnet_name,
    secureBoot: r.secure_boot,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    lastSeenAt: isoOrNull(r.last_seen_at),
    facts: r.facts === null ? null : JSON.parse(r.facts),
  };
}

/** The machine addDiscoveredMany([mac], at) creates as `id`, as a lookup would return it, without reading it back. */
export function discoveredMachine(id: number, mac: string, at: number): Machine {
  return toMachine({
    id,
    hostname: null,
    uuid: null,
    site: null,
    labels: '{}',
    state: 'discovered',
    image_name: null,
    image_channel: null,
    image_id: null,
    kernel_args: '',
    vars: '{}',
    ip: null,
    subnet_id: null,
    subnet_name: null,
    secure_boot: null,
    macs: mac,
    created_at: at,
    updated_at: at,
    last_seen_at: at,
    facts: null,
  });
}

/**
 * The WHERE conditions of the filters every machine listing shares (state, site, labels),
 * for the API's list and the console's fleet page alike; callers append their own.
 */
export function machineConditions(d: Dialect, filter: { state?: MachineState; site?: string; labels?: Record<string, string> }): { where: string[]; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (filter.state) {
    where.push('m.state = ?');
    args.push(filter.state);
  }
  if (filter.site) {
    where.push('m.site = ?');
    args.push(filter.site);
  }
  for (const [k, v] of Object.entries(checkLabels('label', filter.labels ?? {}))) {
    where.push(`${d.jsonField('m.labels')} = ?`);
    args.push(k, v);
  }
  return { where, args };
}
