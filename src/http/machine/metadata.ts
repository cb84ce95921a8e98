import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { decide, templateData } from '../../boot/index.js';
import { envName, envNameCollisions } from '../../cmdb/env-names.js';
import type { Machine } from '../../cmdb/types.js';
import { parseCidr, parseIpv4 } from '../../net/ipv4.js';
import { httpFacts } from '../client-facts.js';
import type { HttpContext } from '../context.js';
import { body, empty, errors, OPEN } from '../openapi.js';
import { MetadataRecord } from '../response-schemas.js';

const MacParams = Type.Object({ mac: Type.String({ maxLength: 64 }) });

/**
 * What a booted machine asks of livery: its configuration (JSON, shell-env, cloud-init
 * NoCloud) and the phone-home that closes its boot trace. Machines hold no tokens, so these
 * are open but narrow: by default a machine is answered only from its own address, and a
 * phone-home is taken only for the image its last boot plan served (see MachineDoor).
 */
export const metadataRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, ctx) => {
  const { cmdb, config, templates, machineDoor } = ctx;

  const open = (operationId: string, summary: string) => ({ tags: ['machine-facing'], operationId, summary, security: OPEN });
  const cloudInit = { 200: body('text/plain', 'the file'), ...errors(400, 403, 404, 429) };

  const machineFor = (req: FastifyRequest, macText: string, what: string) => machineDoor.machineCalling(req, macText, what);

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
    {
      schema: {
        ...open('getMetadata', "A machine's own configuration, as JSON or shell variables (format=env)"),
        params: MacParams,
        querystring: Type.Object({ format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('env')])) }),
        response: {
          200: Type.Unsafe<unknown>({
            description: 'the configuration',
            content: { 'application/json': { schema: MetadataRecord }, 'text/plain': { schema: Type.String({ description: "LIVERY_KEY='value' lines" }) } },
          }),
          ...errors(400, 403, 404, 429),
        },
      },
    },
    async (req, reply) => {
      const { mac, machine } = machineFor(req, req.params.mac, 'metadata');
      const md = metadata(req, mac, machine);
      if (req.query.format !== 'env') return md;
      return reply.header('content-type', 'text/plain; charset=utf-8').send(toEnv(md));
    },
  );

  for (const file of ['meta-data', 'user-data'] as const) {
    app.get(`/cloud-init/:mac/${file}`, { schema: { ...open(`getCloudInit${file === 'meta-data' ? 'MetaData' : 'UserData'}`, `cloud-init NoCloud ${file}`), params: MacParams, response: cloudInit } }, async (req, reply) => {
      const { mac } = machineFor(req, req.params.mac, 'cloud-init data');
      const plan = decide({ ...httpFacts(req, mac), door: 'http' }, ctx);
      return reply.header('content-type', 'text/plain; charset=utf-8').send(templates.render(`cloud-init/${file}`, templateData(plan, config)));
    });
  }
  // NoCloud clients also ask for vendor-data; an empty document is the right answer.
  app.get('/cloud-init/:mac/vendor-data', { schema: { ...open('getCloudInitVendorData', 'cloud-init NoCloud vendor-data (empty)'), params: MacParams, response: cloudInit } }, async (req, reply) => {
    machineFor(req, req.params.mac, 'cloud-init data');
    return reply.header('content-type', 'text/plain; charset=utf-8').send('');
  });

  app.post(
    '/v1/machines/:mac/booted',
    {
      bodyLimit: 4096,
      schema: {
        ...open('reportBooted', 'The phone-home of a booted machine: closes its boot trace'),
        params: MacParams,
        response: { 204: empty('recorded'), ...errors(400, 403, 404, 409, 429) },
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
      const { mac, machine } = machineFor(req, req.params.mac, 'a phone-home');
      const { imageId, kernel, uptimeMs } = req.body;
      machineDoor.requireServed(machine, imageId);
      machineDoor.requireEvent(req, mac, true);
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
  const skipped: string[] = [];
  for (const [prefix, map] of [['LABEL', md.labels], ['VAR', md.vars]] as const) {
    // Writes refuse keys that share a name; a row from before that rule exports none of them.
    const collisions = envNameCollisions(map as Record<string, string>);
    for (const [name, keys] of collisions) skipped.push(`# ${keys.join(', ')} would all be LIVERY_${prefix}_${name}: not exported\n`);
    for (const [k, v] of Object.entries(map as Record<string, string>)) if (!collisions.has(envName(k))) lines.push([`${prefix}_${envName(k)}`, v]);
  }
  return lines.map(([k, v]) => `LIVERY_${k}=${q(v)}\n`).join('') + skipped.join('');
}
