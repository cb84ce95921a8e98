import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { createReadStream, statSync } from 'node:fs';
import { decide, recordBootStep, renderIpxe } from '../../boot/index.js';
import { normalizeMac } from '../../net/mac.js';
import { HttpError } from '../auth.js';
import { httpFacts } from '../client-facts.js';
import type { HttpContext } from '../context.js';

/**
 * What iPXE fetches: /boot.ipxe (chains to the NIC's own script), /boot/<mac>.ipxe (the
 * machine's script, rendered from the boot plan), and /loaders/<file> for UEFI HTTP Boot.
 * Open to machines (no token) and read-only, apart from the boot events they leave, which
 * the machine door bounds (429 past its limits).
 */
export const bootRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, ctx) => {
  const { cmdb, config, templates, machineDoor } = ctx;
  const ipxe = 'text/plain; charset=utf-8';

  app.get('/boot.ipxe', { schema: { tags: ['boot'] } }, async (_req, reply) => {
    reply.header('content-type', ipxe).header('cache-control', 'no-store');
    return templates.render('ipxe/chain.ipxe', { server: config.http.publicUrl });
  });

  app.get('/boot/:file', { schema: { tags: ['boot'], params: Type.Object({ file: Type.String() }) } }, async (req, reply) => {
    const m = /^(.+)\.ipxe$/.exec(req.params.file);
    const mac = m ? normalizeMac(m[1]!) : null;
    if (!mac) throw new HttpError(404, `expected /boot/<mac>.ipxe, got /boot/${req.params.file}`);
    const plan = decide(httpFacts(req, mac), ctx);
    // Every script fetch is a boot event (and, for a new MAC, maybe a registration): bounded.
    machineDoor.requireEvent(req, mac, plan.machine !== null);
    const { script, error } = renderIpxe(plan, config, templates);
    if (!plan.machine || machineDoor.mayRecordFor(req, plan.machine)) {
      await cmdb.soon(() => recordBootStep(cmdb, plan, 'ipxe-script', { template: plan.template, ...(error ? { error } : {}) }));
    }
    if (error) req.log.error({ mac, template: plan.template }, `template error: ${error}`);
    return reply.header('content-type', ipxe).header('cache-control', 'no-store').send(script);
  });

  // UEFI HTTP Boot clients download their first-stage loader by URL instead of TFTP.
  app.get('/loaders/:name', { schema: { tags: ['boot'], params: Type.Object({ name: Type.String() }) } }, async (req, reply) => {
    const path = config.tftp.loaders[req.params.name];
    if (!path) throw new HttpError(404, `no loader ${req.params.name}; configured: ${Object.keys(config.tftp.loaders).join(', ')}`);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      throw new HttpError(404, `loader ${req.params.name} is configured as ${path}, which does not exist (is the ipxe package installed?)`);
    }
    return reply.header('content-type', 'application/efi').header('content-length', size).send(createReadStream(path));
  });
};
