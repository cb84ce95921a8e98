import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import type { Machine, MachineInput } from '../cmdb/types.js';
import { clientFor, globals } from './context.js';
import { collect, formatObject, keyValues, printJson, printRecord, printTable } from './output.js';
import { wholeNumber } from './numbers.js';
import { bmcFromFlags, bmcOptions, formatBmc, putBmc, type BmcFlags } from './bmc.js';
import type { Bmc } from '../cmdb/bmcs.js';

interface MachineFlags extends BmcFlags {
  mac?: string[];
  hostname?: string;
  ip?: string;
  site?: string;
  uuid?: string;
  subnet?: string;
  label?: string[];
  var?: string[];
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
    .option('--state <state>', 'discovered | registered | retired')
    .option('--secure-boot <setting>', 'loader chain for UEFI: off | on | auto ("" inherits the subnet\'s or boot.secureBoot)');
}

function toInput(f: MachineFlags): MachineInput {
  const input: MachineInput = {};
  const orNull = (v: string | undefined) => (v === undefined ? undefined : v === '' ? null : v);
  if (f.mac) input.macs = f.mac;
  for (const k of ['hostname', 'ip', 'site', 'uuid', 'subnet'] as const) if (f[k] !== undefined) input[k] = orNull(f[k]);
  if (f.label) input.labels = keyValues(f.label, '--label');
  if (f.var) input.vars = keyValues(f.var, '--var');
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
    bmc: bmc ? formatBmc(bmc) : null,
  });
}

export function registerMachineCommands(program: Command): void {
  const machine = program.command('machine').description('machines in the CMDB');

  machineOptions(machine.command('add').description('register a machine'))
    .action(async (flags: MachineFlags, cmd: Command) => {
      const bmcInput = await bmcFromFlags(flags);
      const client = clientFor(cmd);
      const m = await client.request<Machine>('POST', '/v1/machines', toInput(flags));
      const bmc = bmcInput ? await putBmc(client, String(m.id), bmcInput) : null;
      globals(cmd).json ? printJson({ ...m, bmc }) : showMachine(m, bmc);
    });

  machineOptions(machine.command('set').description('change a machine').argument('<machine>', 'MAC, hostname or id'))
    .action(async (ref: string, flags: MachineFlags, cmd: Command) => {
      const bmcInput = await bmcFromFlags(flags);
      const client = clientFor(cmd);
      const input = toInput(flags);
      const path = `/v1/machines/${encodeURIComponent(ref)}`;
      // Only a BMC to set: the machine record itself is left untouched.
      const m = Object.keys(input).length > 0 || !bmcInput ? await client.request<Machine>('PATCH', path, input) : await client.get<Machine>(path);
      const bmc = bmcInput ? await putBmc(client, ref, bmcInput) : null;
      globals(cmd).json ? printJson(bmcInput ? { ...m, bmc } : m) : showMachine(m, bmc);
    });

  machine
    .command('list')
    .description('list machines')
    .option('--state <state>', 'discovered | registered | retired')
    .option('--site <site>', 'only this site')
    .option('--label <key=value>', 'only machines with this label (repeatable)', collect)
    .option('--limit <n>', 'at most this many', (v) => wholeNumber('--limit', v, 1, 100_000))
    .action(async (flags: { state?: string; site?: string; label?: string[]; limit?: number }, cmd: Command) => {
      const client = clientFor(cmd);
      const items: Machine[] = [];
      let after: number | null = 0;
      // Page through the whole list unless a limit was asked for.
      while (after !== null && (flags.limit === undefined || items.length < flags.limit)) {
        const q = new URLSearchParams();
        if (flags.state) q.set('state', flags.state);
        if (flags.site) q.set('site', flags.site);
        for (const l of flags.label ?? []) q.append('label', l);
        q.set('limit', String(Math.min(flags.limit ?? 1000, 1000)));
        if (after) q.set('after', String(after));
        const page: { items: Machine[]; next: number | null } = await client.get(`/v1/machines?${q}`);
        items.push(...page.items);
        after = page.next;
      }
      const shown = flags.limit === undefined ? items : items.slice(0, flags.limit);
      if (globals(cmd).json) return printJson(shown);
      printTable(
        ['ID', 'MAC', 'HOSTNAME', 'IP', 'STATE', 'SITE', 'IMAGE', 'LABELS', 'LAST SEEN'],
        shown.map((m) => [m.id, m.macs.join(','), m.hostname, m.ip, m.state, m.site, selector(m), formatObject(m.labels), m.lastSeenAt]),
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
    .option('--purge', 'delete the record instead of retiring it')
    .action(async (ref: string, flags: { purge?: boolean }, cmd: Command) => {
      const m = await clientFor(cmd).request<Machine>('DELETE', `/v1/machines/${encodeURIComponent(ref)}${flags.purge ? '?purge=true' : ''}`);
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
    .option('--firmware <kind>', 'as seen by: bios-pxe | uefi-pxe | uefi-http | ipxe | grub', 'ipxe')
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
