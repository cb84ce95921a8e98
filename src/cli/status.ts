import type { Command } from 'commander';
import { clientFor, globals } from './context.js';
import { printJson, printRecord } from './output.js';

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('is the server up, and what does it hold')
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
      globals(cmd).json ? printJson(status) : printRecord(status);
    });
}
