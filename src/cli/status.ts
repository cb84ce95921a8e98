import type { Command } from 'commander';
import { clientFor, globals } from './context.js';
import type { NodeRecord } from '../cmdb/index.js';
import { printJson, printRecord, printTable } from './output.js';

type NodeView = NodeRecord & { alive: boolean; roles: string[] };
const ago = (iso: string) => `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))} s ago`;

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('is the server up, what does it hold, and which livery nodes share its CMDB')
    .action(async (_f: unknown, cmd: Command) => {
      const client = clientFor(cmd);
      const health = await client.get<{ status: string; schema: number }>('/healthz');
      const count = async (q: string) => (await client.get<{ items: unknown[] }>(`/v1/machines?limit=10000${q}`)).items.length;
      const status = {
        url: client.baseUrl,
        status: health.status,
        schema: health.schema,
        machines: await count(''),
        discovered: await count('&state=discovered'),
        subnets: (await client.get<{ items: unknown[] }>('/v1/subnets')).items.length,
      };
      const nodes = (await client.get<{ items: NodeView[] }>('/v1/nodes')).items;
      if (globals(cmd).json) return printJson({ ...status, nodes });
      printRecord(status);
      console.log();
      printTable(
        ['NODE', 'STATE', 'URL', 'HOST', 'HEARTBEAT', 'DHCP', 'ROLES', 'VERSION'],
        nodes.map((n) => [n.name, n.alive ? 'alive' : 'down', n.url, n.host, ago(n.heartbeatAt), n.dhcp ? 'yes' : 'no', n.roles.join(',') || '-', n.version]),
      );
    });
}
