import type { Command } from 'commander';
import type { AuditEntry } from '../cmdb/audit.js';
import { parseDuration } from '../rollout/durations.js';
import { formatObject, printJson, printTable } from './output.js';
import { clientFor, globals } from './context.js';

/** `--since` as an ISO time, or an age such as 30m or 7d counted back from now. */
function sinceOf(text: string): string {
  const days = /^([0-9]{1,4})d$/.exec(text);
  if (days) return new Date(Date.now() - Number(days[1]) * 86_400_000).toISOString();
  if (/^[0-9]/.test(text) && !text.includes('-')) return new Date(Date.now() - parseDuration('--since', text)).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new Error(`--since: expected an ISO time (2026-12-01T08:00:00Z) or an age (30m, 12h, 7d), got '${text}'`);
  return new Date(at).toISOString();
}

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('who changed what, and when (newest first)')
    .option('--since <time|age>', 'entries at or after an ISO time, or within an age such as 12h or 7d')
    .option('--actor <actor>', 'one actor, e.g. token:ci or livery:dhcp')
    .option('--limit <n>', 'at most this many entries (1 to 1000)', '100')
    .action(async (flags: { since?: string; actor?: string; limit: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: flags.limit });
      if (flags.since) q.set('since', sinceOf(flags.since));
      if (flags.actor) q.set('actor', flags.actor);
      const { items } = await clientFor(cmd).get<{ items: AuditEntry[] }>(`/v1/audit?${q}`);
      if (globals(cmd).json) return printJson(items);
      printTable(['AT', 'ACTOR', 'ACTION', 'TARGET', 'DETAIL'], items.map((a) => [a.at, a.actor, a.action, a.target, formatObject(a.detail)]));
    });
}
