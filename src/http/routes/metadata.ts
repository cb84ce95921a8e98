import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { decide, templateData } from '../../boot/index.js';
import type { Machine } from '../../cmdb/types.js';
import { parseCidr, parseIpv4 } from '../../net/ipv4.js';
import { httpFacts } from '../client-facts.js';
import type { HttpContext } from '../context.js';
import { machineCalling } from '../machine-caller.js';

const MacParams = Type.Object({ mac: Type.String({ maxLength: 64 }) });

/**
 * What a booted machine asks of livery: its configuration (JSON, shell-env, cloud-init
 * NoCloud) and the phone-home that closes its boot trace. Machines hold no tokens, so these
 * are open but narrow: a MAC reads only its own data and writes only its own boot record.
 */
export const metadataRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, ctx) => {
  const { cmdb, config, templates } = ctx;

  const machineFor = (req: FastifyRequest, macText: string) => machineCalling(cmdb, config, req, macText);

  function metadata(req: FastifyRequest, mac: string, machine: Machine) {
    const plan = decide({ ...httpFacts(req, mac), door: 'http' }, ctx);
    const lease = cmdb.leases.activeFor(mac) ?? null;
    const ip = machine.ip ?? lease?.ip ?? null;
    const subnet = plan.subnet ?? (ip ? cmdb.subnets.containing(parseIpv4(ip)!) : null);
    return {
      mac,
      hostname: machine.hostname,
      ip,
      prefix: subnet ? parseCidr(subnet.cidr)!.prefix : null,
      gateway: subnet?.gateway ?? null,
      dns: subnet?.dns ?? [],
      domain: subnet?.domain ?? null,
      site: machine.site,
      labels: machine.labels,
      vars: machine.vars,
      image: plan.image ? { id: plan.image.id, name: plan.image.name, version: plan.image.version, channel: plan.image.channel } : null,
    };
  }

  app.get(
    '/v1/metadata/:mac',
    { schema: { tags: ['machine-facing'], params: MacParams, querystring: Type.Object({ format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('env')])) }) } },
    async (req, reply) => {
      const { mac, machine } = machineFor(req, req.params.mac);
      const md = metadata(req, mac, machine);
      if (req.query.format !== 'env') return md;
      return reply.header('content-type', 'text/plain; charset=utf-8').send(toEnv(md));
    },
  );

  for (const file of ['meta-data', 'user-data'] as const) {
    app.get(`/cloud-init/:mac/${file}`, { schema: { tags: ['machine-facing'], params: MacParams } }, async (req, reply) => {
      const { mac } = machineFor(req, req.params.mac);
      const plan = decide({ ...httpFacts(req, mac), door: 'http' }, ctx);
      return reply.header('content-type', 'text/plain; charset=utf-8').send(templates.render(`cloud-init/${file}`, templateData(plan, config)));
    });
  }
  // NoCloud clients also ask for vendor-data; an empty document is the right answer.
  app.get('/cloud-init/:mac/vendor-data', { schema: { tags: ['machine-facing'], params: MacParams } }, async (req, reply) => {
    machineFor(req, req.params.mac);
    return reply.header('content-type', 'text/plain; charset=utf-8').send('');
  });

  app.post(
    '/v1/machines/:mac/booted',
    {
      bodyLimit: 4096,
      schema: {
        tags: ['machine-facing'],
        params: MacParams,
        body: Type.Object(
          {
            imageId: Type.String({ maxLength: 64 }),
            kernel: Type.Optional(Type.String({ maxLength: 256 })),
            uptimeMs: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const { mac, machine } = machineFor(req, req.params.mac);
      const { imageId, kernel, uptimeMs } = req.body;
      await cmdb.soon(() => {
        cmdb.machines.touchLastSeen(machine.id);
        cmdb.events.add({ type: 'booted', mac, machineId: machine.id, imageId, detail: { kernel: kernel ?? null, uptimeMs: uptimeMs ?? null, from: req.ip } });
      });
      return reply.code(204).send();
    },
  );
};

/** Shell-safe `LIVERY_KEY='value'` lines (single quotes; a quote inside becomes '\''). */
export function toEnv(md: Record<string, unknown>): string {
  const q = (v: unknown) => `'${String(v ?? '').replaceAll("'", `'\\''`)}'`;
  const image = (md.image ?? {}) as { id?: string; name?: string; version?: string; channel?: string | null };
  const lines: [string, unknown][] = [
    ['MAC', md.mac],
    ['HOSTNAME', md.hostname],
    ['IP', md.ip],
    ['PREFIX', md.prefix],
    ['GATEWAY', md.gateway],
    ['DNS', (md.dns as string[]).join(' ')],
    ['DOMAIN', md.domain],
    ['SITE', md.site],
    ['IMAGE_ID', image.id],
    ['IMAGE_NAME', image.name],
    ['IMAGE_VERSION', image.version],
    ['IMAGE_CHANNEL', image.channel],
  ];
  for (const [k, v] of Object.entries(md.labels as Record<string, string>)) lines.push([`LABEL_${envName(k)}`, v]);
  for (const [k, v] of Object.entries(md.vars as Record<string, string>)) lines.push([`VAR_${envName(k)}`, v]);
  return lines.map(([k, v]) => `LIVERY_${k}=${q(v)}\n`).join('');
}

const envName = (k: string) => k.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
