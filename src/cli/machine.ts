import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import type { Machine, MachineInput } from '../cmdb/types.js';
import { clientFor, globals } from './context.js';
import { registerMachineDiagnostics } from './machine-diagnostics.js';
import { collect, formatObject, keyValues, printJson, printRecord, printTable } from './output.js';
import { wholeNumber } from './numbers.js';
import { bmcFromFlags, bmcOptions, formatBmc, putBmc, type BmcFlags } from './bmc.js';
import type { Bmc } from '../cmdb/bmcs.js';
import { MACHINE_STATES } from '../cmdb/machine-rows.js';
import { choice } from './choices.js';
import { confirm } from './confirm.js';

interface MachineFlags extends BmcFlags {
  mac?: string[];
  hostname?: string;
  ip?: string;
  site?: string;
  uuid?: string;
  subnet?: string;
  label?: string[];
  unlabel?: string[];
  var?: string[];
  unvar?: string[];
  image?: string;
  channel?: string;
  imageId?: string;
  kernelArgs?: string;
  state?: MachineInput['state'];
  secureBoot?: string;
}

/** Options shared by `add` and `set`; an empty string clears a field on `set`. */
function machineOptions(cmd: Command): Command {
  return bmcOptions(cmd)
    .option('--mac <mac>', 'MAC address (repeat for several NICs)', collect)
    .option('--hostname <name>', 'hostname (unique)')
    .option('--ip <address>', 'reserved IPv4 address (outside the dynamic pools)')
    .option('--site <site>', 'site or data centre')
    .option('--uuid <uuid>', 'SMBIOS UUID')
    .option('--subnet <name>', 'subnet the reservation belongs to')
    .option('--label <key=value>', 'label (repeatable)', collect)
    .option('--var <name=value>', 'variable for templates and the agent (repeatable)', collect)
    .option('--image <name>', 'image name to boot')
    .option('--channel <channel>', 'channel of that image (default stable)')
    .option('--image-id <id>', 'pin an exact image id')
    .option('--kernel-args <args>', 'extra kernel arguments')
    .addOption(choice('--state <state>', 'the machine\'s state', MACHINE_STATES))
    .option('--secure-boot <setting>', 'loader chain for UEFI: off | on | auto ("" inherits the subnet\'s or boot.secureBoot)');
}

/** `--label`/`--var` on `set` change those keys only; `--unlabel`/`--unvar` remove keys. */
function changesOf(set: Record<string, string> | undefined, unset: string[] | undefined): Record<string, string | null> | undefined {
  if (!set && !unset) return undefined;
  return { ...set, ...Object.fromEntries((unset ?? []).map((k) => [k, null])) };
}

function toInput(f: MachineFlags, editing: boolean): MachineInput {
  const input: MachineInput = {};
  const orNull = (v: string | undefined) => (v === undefined ? undefined : v === '' ? null : v);
  if (f.mac) input.macs = f.mac;
  for (const k of ['hostname', 'ip', 'site', 'uuid', 'subnet'] as const) if (f[k] !== undefined) input[k] = orNull(f[k]);
  const labels = keyValues(f.label, '--label');
  const vars = keyValues(f.var, '--var');
  const labelChanges = editing ? changesOf(labels, f.unlabel) : undefined;
  const varChanges = editing ? changesOf(vars, f.unvar) : undefined;
  if (labelChanges) input.labelChanges = labelChanges;
  else if (labels) input.labels = labels;
  if (varChanges) input.varChanges = varChanges;
  else if (vars) input.vars = vars;
  if (f.kernelArgs !== undefined) input.kernelArgs = f.kernelArgs;
  if (f.state) input.state = f.state;
  if (f.secureBoot !== undefined) input.secureBoot = orNull(f.secureBoot) as MachineInput['secureBoot'];
  if (f.image !== undefined || f.channel !== undefined || f.imageId !== undefined) {
    input.image = {};
    if (f.image !== undefined) input.image.name = orNull(f.image);
    if (f.channel !== undefined) input.image.channel = orNull(f.channel);
    if (f.imageId !== undefined) input.image.id = orNull(f.imageId);
  }
  return input;
}

const selector = (m: Machine) => m.image.id ?? (m.image.name ? `${m.image.name}@${m.image.channel}` : null);

/** `machine list --columns`: the machine's own fields; any other name is a fact key. */
const MACHINE_COLUMNS: Record<string, { title: string; value: (m: Machine) => string | number | null }> = {
  id: { title: 'ID', value: (m) => m.id },
  mac: { title: 'MAC', value: (m) => m.macs.join(',') },
  hostname: { title: 'HOSTNAME', value: (m) => m.hostname },
  ip: { title: 'IP', value: (m) => m.ip },
  state: { title: 'STATE', value: (m) => m.state },
  site: { title: 'SITE', value: (m) => m.site },
  image: { title: 'IMAGE', value: selector },
  labels: { title: 'LABELS', value: (m) => formatObject(m.labels) },
  lastSeen: { title: 'LAST SEEN', value: (m) => m.lastSeenAt },
};

export function showMachine(m: Machine, bmc: Bmc | null = null): void {
  printRecord({
    id: m.id,
    macs: m.macs,
    hostname: m.hostname,
    state: m.state,
    ip: m.ip,
    subnet: m.subnet,
    site: m.site,
    uuid: m.uuid,
    labels: m.labels,
    image: selector(m),
    kernelArgs: m.kernelArgs,
    secureBoot: m.secureBoot,
    vars: m.vars,
    created: m.createdAt,
    updated: m.updatedAt,
    lastSeen: m.lastSeenAt,
    bmc: bmc ? formatBmc(bmc, m.macs[0] ?? String(m.id)) : m.facts?.['bmc.address'] ? `none set; found at ${m.facts['bmc.address']} (livery machine set ${m.macs[0]} --bmc ipmi://USER@${m.facts['bmc.address']})` : null,
  });
}

/** A machine as add and set get it back: with the likely mistakes the server noticed. */
type MachineAnswer = Machine & { warnings?: string[] };
const warn = (m: MachineAnswer) => {
  for (const w of m.warnings ?? []) console.error(`warning: ${w}`);
};

export function registerMachineCommands(program: Command): void {
  const machine = program.command('machine').description('machines in the CMDB');

  machineOptions(machine.command('add').description('register a machine'))
    .action(async (flags: MachineFlags, cmd: Command) => {
      const bmcInput = await bmcFromFlags(flags);
      const client = clientFor(cmd);
      const m = await client.request<MachineAnswer>('POST', '/v1/machines', toInput(flags, false));
      warn(m);
      const bmc = bmcInput ? await putBmc(client, String(m.id), bmcInput) : null;
      globals(cmd).json ? printJson({ ...m, bmc }) : showMachine(m, bmc);
    });

  machineOptions(machine.command('set').description('change a machine; --label and --var change only the keys given').argument('<machine>', 'MAC, hostname or id'))
    .option('--unlabel <key>', 'remove a label (repeatable)', collect)
    .option('--unvar <name>', 'remove a variable (repeatable)', collect)
    .action(async (ref: string, flags: MachineFlags, cmd: Command) => {
      const bmcInput = await bmcFromFlags(flags);
      const client = clientFor(cmd);
      const input = toInput(flags, true);
      const path = `/v1/machines/${encodeURIComponent(ref)}`;
      // Only a BMC to set: the machine record itself is left untouched.
      const m = Object.keys(input).length > 0 || !bmcInput ? await client.request<MachineAnswer>('PATCH', path, input) : await client.get<MachineAnswer>(path);
      warn(m);
      const bmc = bmcInput ? await putBmc(client, ref, bmcInput) : null;
      globals(cmd).json ? printJson(bmcInput ? { ...m, bmc } : m) : showMachine(m, bmc);
    });

  machine
    .command('list')
    .description('list machines')
    .addOption(choice('--state <state>', 'only machines in this state', MACHINE_STATES))
    .option('--site <site>', 'only this site')
    .option('--label <key=value>', 'only machines with this label (repeatable)', collect)
    .option('--fact <KEY OP VALUE>', "only machines whose facts match, e.g. 'memory_gb>=256' or cpu.vendor=AMD (OP: = != < <= > >=; repeatable)", collect)
    .option('--columns <list>', 'columns to show: machine fields (id, mac, hostname, ip, state, site, image, labels, lastSeen) and fact keys (cpu.threads, memory_gb, ...)')
    .option('--limit <n>', 'at most this many', (v) => wholeNumber('--limit', v, 1, 100_000))
    .action(async (flags: { state?: string; site?: string; label?: string[]; fact?: string[]; columns?: string; limit?: number }, cmd: Command) => {
      const client = clientFor(cmd);
      const items: Machine[] = [];
      let after: number | null = 0;
      // Page through the whole list unless a limit was asked for.
      while (after !== null && (flags.limit === undefined || items.length < flags.limit)) {
        const q = new URLSearchParams();
        if (flags.state) q.set('state', flags.state);
        if (flags.site) q.set('site', flags.site);
        for (const l of flags.label ?? []) q.append('label', l);
        for (const f of flags.fact ?? []) q.append('fact', f);
        q.set('limit', String(Math.min(flags.limit ?? 1000, 1000)));
        if (after) q.set('after', String(after));
        const page: { items: Machine[]; next: number | null } = await client.get(`/v1/machines?${q}`);
        items.push(...page.items);
        after = page.next;
      }
      const shown = flags.limit === undefined ? items : items.slice(0, flags.limit);
      if (globals(cmd).json) return printJson(shown);
      const columns = (flags.columns ?? 'id,mac,hostname,ip,state,site,image,labels,lastSeen').split(',').map((c) => c.trim()).filter(Boolean);
      printTable(
        columns.map((c) => (c in MACHINE_COLUMNS ? MACHINE_COLUMNS[c]!.title : c)),
        shown.map((m) => columns.map((c) => (c in MACHINE_COLUMNS ? MACHINE_COLUMNS[c]!.value(m) : (m.facts?.[c] ?? null)))),
      );
    });

  machine
    .command('show')
    .description('show one machine')
    .argument('<machine>', 'MAC, hostname or id')
    .action(async (ref: string, _flags: unknown, cmd: Command) => {
      const client = clientFor(cmd);
      const m = await client.get<Machine>(`/v1/machines/${encodeURIComponent(ref)}`);
      const bmc = await client.get<Bmc>(`/v1/machines/${m.id}/bmc`).catch(() => null);
      globals(cmd).json ? printJson({ ...m, bmc }) : showMachine(m, bmc);
    });

  machine
    .command('rm')
    .description('retire a machine (it boots nothing); --purge deletes the record')
    .argument('<machine>', 'MAC, hostname or id')
    .option('--purge', 'delete the record instead of retiring it (asks first)')
    .option('--yes', 'with --purge: do not ask')
    .action(async (ref: string, flags: { purge?: boolean; yes?: boolean }, cmd: Command) => {
      const client = clientFor(cmd);
      let target = ref;
      if (flags.purge) {
        const found = await client.get<Machine>(`/v1/machines/${encodeURIComponent(ref)}`);
        await confirm(`delete machine ${found.hostname ?? found.macs[0]} (id ${found.id}) and its history`, flags.yes);
        target = `id:${found.id}`;
      }
      const m = await client.request<Machine>('DELETE', `/v1/machines/${encodeURIComponent(target)}${flags.purge ? '?purge=true' : ''}`);
      globals(cmd).json ? printJson(m) : console.log(`${flags.purge ? 'purged' : 'retired'} ${m.hostname ?? m.macs[0]}`);
    });

  machine
    .command('import')
    .description('create or update machines from a CSV or JSON file (all rows or none)')
    .argument('<file>', '.csv (header: mac,hostname,ip,site,labels,image,channel,...) or .json (array)')
    .action(async (file: string, _flags: unknown, cmd: Command) => {
      const text = readFileSync(file, 'utf8');
      const isCsv = extname(file).toLowerCase() !== '.json';
      const r = await clientFor(cmd).request<{ created: number; updated: number; unchanged: number }>(
        'POST',
        '/v1/machines/import',
        isCsv ? text : JSON.parse(text),
        isCsv ? 'text/csv' : 'application/json',
      );
      globals(cmd).json ? printJson(r) : console.log(`created ${r.created}, updated ${r.updated}, unchanged ${r.unchanged}`);
    });

  registerMachineDiagnostics(machine);
}
