import type { Command } from 'commander';
import { UNKNOWN_MAC_POLICIES } from '../cmdb/subnets.js';
import type { Subnet, SubnetInput } from '../cmdb/types.js';
import { choice } from './choices.js';
import { confirm } from './confirm.js';
import { clientFor, globals } from './context.js';
import { collect, printJson, printRecord, printTable } from './output.js';

interface SubnetFlags {
  name?: string;
  cidr?: string;
  gateway?: string;
  dns?: string[];
  domain?: string;
  pool?: string[];
  leaseTime?: string;
  policy?: SubnetInput['policy'];
  discoverAction?: SubnetInput['discoverAction'];
  defaultImage?: string;
  defaultChannel?: string;
  secureBoot?: string;
}

function subnetOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'subnet name (defaults to the CIDR)')
    .option('--cidr <cidr>', 'address block, e.g. 10.0.0.0/24')
    .option('--gateway <ip>', 'default router')
    .option('--dns <ip>', 'DNS server (repeatable)', collect)
    .option('--domain <domain>', 'DNS domain')
    .option('--pool <start-end>', 'dynamic pool, e.g. 10.0.0.100-10.0.0.199 (repeatable)', collect)
    .option('--lease-time <seconds>', 'lease time in seconds')
    .addOption(choice('--policy <policy>', 'what unknown MACs get', UNKNOWN_MAC_POLICIES))
    .addOption(choice('--discover-action <action>', 'what discovered machines are told', ['retry', 'exit']))
    .option('--default-image <name>', 'image unknown machines boot under policy default-image')
    .option('--default-channel <channel>', 'channel of the default image')
    .option('--secure-boot <setting>', 'loader chain for UEFI machines: off | on | auto ("" inherits boot.secureBoot)');
}

function toInput(f: SubnetFlags): SubnetInput {
  const input: SubnetInput = {};
  if (f.name) input.name = f.name;
  if (f.cidr) input.cidr = f.cidr;
  if (f.gateway !== undefined) input.gateway = f.gateway || null;
  if (f.dns) input.dns = f.dns;
  if (f.domain !== undefined) input.domain = f.domain || null;
  if (f.pool) {
    input.pools = f.pool.map((p) => {
      const [start, end, extra] = p.split('-');
      if (!start || !end || extra !== undefined) throw new Error(`--pool: expected START-END, got ${JSON.stringify(p)}`);
      return { start, end };
    });
  }
  if (f.leaseTime) input.leaseSeconds = Number(f.leaseTime);
  if (f.policy) input.policy = f.policy;
  if (f.discoverAction) input.discoverAction = f.discoverAction;
  if (f.secureBoot !== undefined) input.secureBoot = (f.secureBoot || null) as SubnetInput['secureBoot'];
  if (f.defaultImage !== undefined || f.defaultChannel !== undefined) {
    input.defaultImage = {};
    if (f.defaultImage !== undefined) input.defaultImage.name = f.defaultImage || null;
    if (f.defaultChannel !== undefined) input.defaultImage.channel = f.defaultChannel || null;
  }
  return input;
}

const pools = (s: Subnet) => s.pools.map((p) => `${p.start}-${p.end}`).join(',');
const show = (s: Subnet) =>
  printRecord({
    id: s.id,
    name: s.name,
    cidr: s.cidr,
    gateway: s.gateway,
    dns: s.dns,
    domain: s.domain,
    pools: pools(s),
    leaseSeconds: s.leaseSeconds,
    policy: s.policy,
    discoverAction: s.discoverAction,
    defaultImage: s.defaultImage.name ? `${s.defaultImage.name}@${s.defaultImage.channel}` : null,
    secureBoot: s.secureBoot,
  });

export function registerSubnetCommands(program: Command): void {
  const subnet = program.command('subnet').description('subnets, pools and unknown-machine policy');
  const path = (ref: string) => `/v1/subnets/${encodeURIComponent(ref)}`;

  subnetOptions(subnet.command('add').description('add a subnet')).action(async (flags: SubnetFlags, cmd: Command) => {
    const s = await clientFor(cmd).request<Subnet>('POST', '/v1/subnets', toInput(flags));
    globals(cmd).json ? printJson(s) : show(s);
  });
  subnetOptions(subnet.command('set').description('change a subnet').argument('<subnet>', 'name, CIDR or id')).action(
    async (ref: string, flags: SubnetFlags, cmd: Command) => {
      const s = await clientFor(cmd).request<Subnet>('PATCH', path(ref), toInput(flags));
      globals(cmd).json ? printJson(s) : show(s);
    },
  );
  subnet
    .command('list')
    .description('list subnets')
    .action(async (_f: unknown, cmd: Command) => {
      const { items } = await clientFor(cmd).get<{ items: Subnet[] }>('/v1/subnets');
      if (globals(cmd).json) return printJson(items);
      printTable(
        ['NAME', 'CIDR', 'GATEWAY', 'POOLS', 'POLICY', 'LEASE'],
        items.map((s) => [s.name, s.cidr, s.gateway, pools(s), s.policy, s.leaseSeconds]),
      );
    });
  subnet
    .command('show')
    .description('show one subnet')
    .argument('<subnet>', 'name, CIDR or id')
    .action(async (ref: string, _f: unknown, cmd: Command) => {
      const s = await clientFor(cmd).get<Subnet>(path(ref));
      globals(cmd).json ? printJson(s) : show(s);
    });
  subnet
    .command('rm')
    .description('delete a subnet and its leases (asks first; --yes for scripts)')
    .argument('<subnet>', 'name, CIDR or id')
    .option('--yes', 'do not ask')
    .action(async (ref: string, flags: { yes?: boolean }, cmd: Command) => {
      const client = clientFor(cmd);
      const subnet = await client.get<Subnet>(path(ref));
      await confirm(`delete subnet ${subnet.name} (${subnet.cidr}) and its leases`, flags.yes);
      const s = await client.request<Subnet>('DELETE', path(`id:${subnet.id}`));
      globals(cmd).json ? printJson(s) : console.log(`deleted subnet ${s.name}`);
    });
}
