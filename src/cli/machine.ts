import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import type { Machine, MachineInput } from '../cmdb/types.js';
import { clientFor, globals } from './context.js';
import { collect, formatObject, keyValues, printJson, printRecord, printTable } from './output.js';
import { wholeNumber } from './numbers.js';
import { bmcFromFlags, bmcOptions, formatBmc, putBmc, type BmcFlags } from './bmc.js';
import type { Bmc } from '../cmdb/bmcs.js';
import { MACHINE_STATES } from '../cmdb/machines.js';
import { FIRMWARES } from '../boot/facts.js';
import { choice } from './choices.js';
import { confirm } from './confirm.js';
import type { FactChange } from '../facts/drift.js';
import type { Facts } from '../facts/types.js';

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
    bmc: bmc ? formatBmc(bmc) : m.facts?.['bmc.address'] ? `none set; found at ${m.facts['bmc.address']} (livery machine set ${m.macs[0]} --bmc ipmi://USER@${m.facts['bmc.address']})` : null,
  });
}

export function registerMachineCommands(program: Command): void {
  const machine = program.command('machine').description('machines in the CMDB');

  machineOptions(machine.command('add').description('register a machine'))
    .action(async (flags: MachineFlags, cmd: Command) => {
      const bmcInput = await bmcFromFlags(flags);
      const client = clientFor(cmd);
      const m = await client.request<Machine>('POST', '/v1/machines', toInput(flags, false));
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
      const m = Object.keys(input).length > 0 || !bmcInput ? await client.request<Machine>('PATCH', path, input) : await client.get<Machine>(path);
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

  machine
    .command('facts')
    .description('the hardware facts of the machine\'s latest boot; --diff: what changed since the boot before')
    .argument('<machine>', 'MAC, hostname or id')
    .option('--diff', 'compare with the previous boot that reported facts')
    .option('--raw', 'the report as the machine sent it (livery-facts.sh output), as JSON')
    .action(async (ref: string, flags: { diff?: boolean; raw?: boolean }, cmd: Command) => {
      if (flags.raw) return printJson(await clientFor(cmd).get(`/v1/machines/${encodeURIComponent(ref)}/facts?raw=true`));
      const f = await clientFor(cmd).get<MachineFacts>(`/v1/machines/${encodeURIComponent(ref)}/facts${flags.diff ? '?diff=true' : ''}`);
      if (globals(cmd).json) return printJson(f);
      if (!flags.diff) {
        console.log(`facts of the boot at ${f.at} (image ${f.imageId ?? '-'})`);
        printRecord(f.flat);
        printTable(['DISK', 'MODEL', 'SERIAL', 'GB', 'ROTATIONAL'], f.facts.disks.map((d) => [d.name, d.model, d.serial, Math.round(d.bytes / 1e9), d.rotational === null ? null : String(d.rotational)]));
        printTable(['NIC', 'MAC', 'DRIVER', 'MBIT/S', 'FIRMWARE'], f.facts.nics.map((n) => [n.name, n.mac, n.driver, n.speedMbps, n.firmware]));
        return;
      }
      if (!f.previous) return console.log(`no earlier boot with facts to compare with (latest: ${f.at})`);
      console.log(`boot at ${f.at} compared with the boot at ${f.previous.at}`);
      if (f.changes!.length === 0) return console.log('no hardware change');
      printTable(['FACT', 'BEFORE', 'AFTER'], f.changes!.map((c) => [c.key, c.before === null ? '(none)' : String(c.before), c.after === null ? '(none)' : String(c.after)]));
    });

  registerMachineDiagnostics(machine);
}

interface MachineFacts {
  at: string;
  imageId: string | null;
  facts: Facts;
  flat: Record<string, string | number>;
  previous?: { at: string } | null;
  changes?: FactChange[];
}

interface Explanation {
  mac: string;
  policy: string;
  action: string;
  subnet: string | null;
  image: { id: string; name: string; version: string; channel: string | null } | null;
  next: { kind: string; file?: string; url?: string };
  cmdline: string;
  template: string;
  reasons: string[];
  script: string;
  templateError: string | null;
  chain: { chain: 'ipxe' | 'shim'; secureBoot: string; source: string };
}

interface Trace {
  machine: { hostname: string | null; macs: string[] };
  boots: {
    startedAt: string;
    complete: boolean;
    reached: string | null;
    stoppedBefore: string | null;
    lastStep: string | null;
    imageId: string | null;
    stages: { stage: string; at: string; count: number; event: string; detail: Record<string, unknown> }[];
  }[];
}

/** `explain` and `trace`: why a machine boots what it boots, and how far its last boots got. */
function registerMachineDiagnostics(machine: Command): void {
  machine
    .command('explain')
    .description('show the whole boot decision for a MAC: subnet, policy, image and why, and the rendered script')
    .argument('<machine>', 'MAC (known or not), hostname or id')
    .addOption(choice('--firmware <kind>', 'as seen by this client', FIRMWARES).default('ipxe'))
    .option('--subnet <subnet>', 'as if it asked from this subnet')
    .action(async (ref: string, flags: { firmware: string; subnet?: string }, cmd: Command) => {
      const q = new URLSearchParams({ firmware: flags.firmware, ...(flags.subnet ? { subnet: flags.subnet } : {}) });
      const e = await clientFor(cmd).get<Explanation>(`/v1/machines/${encodeURIComponent(ref)}/explain?${q}`);
      if (globals(cmd).json) return printJson(e);
      printRecord({
        mac: e.mac,
        subnet: e.subnet,
        policy: e.policy,
        action: e.action,
        image: e.image ? `${e.image.name} ${e.image.version} [${e.image.id}]${e.image.channel ? ` via channel ${e.image.channel}` : ' (pinned)'}` : null,
        next: e.next.kind === 'tftp' ? `TFTP ${e.next.file}` : e.next.kind === 'none' ? 'nothing' : `${e.next.kind} ${e.next.url}`,
        chain: `${e.chain.chain === 'shim' ? 'shim -> GRUB -> kernel (signed)' : 'iPXE'}; secureBoot ${e.chain.secureBoot} from ${e.chain.source}`,
        template: e.template,
        cmdline: e.cmdline || null,
      });
      console.log('\nwhy:');
      for (const r of e.reasons) console.log(`  - ${r}`);
      if (e.templateError) console.log(`\ntemplate error: ${e.templateError}`);
      console.log(`\nscript:\n${e.script.replace(/^/gm, '  ')}`);
    });

  machine
    .command('trace')
    .description('the stages of the last boots of a machine, with timestamps, and where a boot stopped')
    .argument('<machine>', 'MAC, hostname or id')
    .option('--boots <n>', 'how many boots', (v) => wholeNumber('--boots', v, 1, 50), 3)
    .action(async (ref: string, flags: { boots: number }, cmd: Command) => {
      const t = await clientFor(cmd).get<Trace>(`/v1/machines/${encodeURIComponent(ref)}/trace?boots=${flags.boots}`);
      if (globals(cmd).json) return printJson(t);
      if (t.boots.length === 0) return console.log(`no boots recorded for ${t.machine.hostname ?? t.machine.macs[0]}`);
      for (const b of t.boots) {
        const start = Date.parse(b.startedAt);
        const status = b.complete ? `booted image ${b.imageId}` : `stopped before ${b.stoppedBefore ?? '?'}`;
        console.log(`boot at ${b.startedAt}: ${status}`);
        if (b.lastStep) console.log(`last: ${b.lastStep}`);
        printTable(
          ['STAGE', '+SECONDS', 'EVENT', 'DETAIL'],
          b.stages.map((s) => [
            s.stage,
            ((Date.parse(s.at) - start) / 1000).toFixed(1),
            s.count > 1 ? `${s.event} ×${s.count}` : s.event,
            stageDetail(s.detail),
          ]),
        );
        console.log('');
      }
    });
}

function stageDetail(d: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const k of ['ip', 'file', 'bytes', 'result', 'template', 'kernel', 'uptimeMs', 'error']) if (d[k] !== undefined && d[k] !== null) parts.push(`${k}=${d[k]}`);
  return parts.join(' ');
}
