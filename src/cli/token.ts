import type { Command } from 'commander';
import { resolve } from 'node:path';
import { ROLES } from '../cmdb/tokens.js';
import type { ApiToken, Role } from '../cmdb/types.js';
import { choice } from './choices.js';
import { clientFor, globals } from './context.js';
import { printJson, printTable } from './output.js';

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('API tokens');

  token
    .command('create')
    .description('create a token and print it (shown once)')
    .addOption(choice('--role <role>', 'what the token may do', ROLES).makeOptionMandatory())
    .option('--name <name>', 'what the token is for', 'cli')
    .option('--data-dir <dir>', 'write straight into this data dir\'s database (bootstrap, no server needed)')
    .action(async (flags: { role: Role; name: string; dataDir?: string }, cmd: Command) => {
      let created: ApiToken & { token: string };
      if (flags.dataDir) {
        const [{ openCmdb }, { databasePath }] = await Promise.all([import('../cmdb/index.js'), import('../daemon/paths.js')]);
        const cmdb = openCmdb(databasePath(resolve(flags.dataDir)));
        try {
          const r = cmdb.change('cli:token-create', 'token.create', flags.name, () => cmdb.tokens.create(flags.name, flags.role));
          created = { ...r.record, token: r.token };
        } finally {
          cmdb.close();
        }
      } else {
        created = await clientFor(cmd).request('POST', '/v1/tokens', { name: flags.name, role: flags.role });
      }
      globals(cmd).json ? printJson(created) : console.log(created.token);
    });

  token
    .command('list')
    .description('list tokens (never their secrets), with when each was last used')
    .action(async (_f: unknown, cmd: Command) => {
      const { items } = await clientFor(cmd).get<{ items: ApiToken[] }>('/v1/tokens');
      if (globals(cmd).json) return printJson(items);
      printTable(['ID', 'NAME', 'ROLE', 'CREATED', 'LAST USED', 'REVOKED'], items.map((t) => [t.id, t.name, t.role, t.createdAt, t.lastUsedAt, t.revokedAt]));
    });

  token
    .command('revoke')
    .description('revoke a token: it is refused from then on')
    .argument('<id>', 'token id (the part after lvy_)')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const t = await clientFor(cmd).request<ApiToken>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
      globals(cmd).json ? printJson(t) : console.log(`revoked ${t.id} (${t.name})`);
    });
}
