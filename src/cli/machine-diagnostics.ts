import type { Command } from 'commander';
import { FIRMWARES } from '../boot/facts.js';
import type { FactChange } from '../facts/drift.js';
import type { Facts } from '../facts/types.js';
import { choice } from './choices.js';
import { clientFor, globals } from './context.js';
import { wholeNumber } from './numbers.js';
import { printJson, printRecord, printTable } from './output.js';

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

/**
 * `facts`, `explain` and `trace`: what hardware a machine reported, why it boots what it boots,
 * and how far its last boots got.
 */
export function registerMachineDiagnostics(machine: Command): void {
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
