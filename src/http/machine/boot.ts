import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createReadStream, statSync } from 'node:fs';
import { bootStep, decide, GRUB_ENTRY_PATH, GRUB_TEMPLATE, renderScript } from '../../boot/index.js';
import type { ImageSelector } from '../../cmdb/types.js';
import { nodeName } from '../../config/index.js';
import { normalizeMac } from '../../net/mac.js';
import { HttpError } from '../auth.js';
import { httpFacts } from '../client-facts.js';
import { AHEAD_OF_BOOT_STEPS, type HttpContext } from '../context.js';
import { body, errors, OPEN } from '../openapi.js';

/**
 * What iPXE fetches: /boot.ipxe (chains to the NIC's own script), /boot/<mac>.ipxe (the
 * machine's script, rendered from the boot plan), and /loaders/<file> for UEFI HTTP Boot.
 * What the signed GRUB fetches when it came over HTTP: /grub/grub.cfg (hands over
 * to the NIC's own config) and /grub/grub.cfg-01-<mac>.
 * Open to machines (no token) and read-only, apart from the boot events they leave, which
 * the machine door bounds (429 past its limits).
 * Decisions read the CMDB through a MachineCache: every script is decided per request from the
 * data as it stands (an edit through this process is in the next script served, one from
 * another process within the cache's check interval), without a query for each of the
 * machine, rules, subnet and image. The script goes out before its boot event is durable
 * (BootStepBatch).
 */
export const bootRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, ctx) => {
  const { cmdb, config, templates, machineDoor, bootSteps, machineCache: cache } = ctx;
  const node = nodeName(config);
  const decideContext = {
    cmdb,
    config,
    subnetContaining: (ip: number) => cache.subnetContaining(ip),
    rules: () => cache.rules(),
    resolveImage: (selector: ImageSelector) => cache.resolveImage(selector),
    imageReady: (imageId: string) => cache.imageReady(imageId, node),
  };
  const ipxe = 'text/plain; charset=utf-8';
  const open = (operationId: string, summary: string) => ({ tags: ['boot'], operationId, summary, security: OPEN });
  const script = body('text/plain', 'the script');

  app.get('/boot.ipxe', { schema: { ...open('getChainScript', 'The iPXE script that chains to the NIC\'s own script'), response: { 200: script } } }, async (_req, reply) => {
    reply.header('content-type', ipxe).header('cache-control', 'no-store');
    return templates.render('ipxe/chain.ipxe', { server: config.http.publicUrl });
  });

  app.get('/boot/:file', { config: AHEAD_OF_BOOT_STEPS, schema: { ...open('getBootScript', "A machine's iPXE script, /boot/<mac>.ipxe"), params: Type.Object({ file: Type.String() }), response: { 200: script, ...errors(404, 429) } } }, async (req, reply) => {
    const m = /^(.+)\.ipxe$/.exec(req.params.file);
    const mac = m ? normalizeMac(m[1]!) : null;
    if (!mac) throw new HttpError(404, `expected /boot/<mac>.ipxe, got /boot/${req.params.file}`);
    return serveScript(req, reply, 'ipxe', mac);
  });

  // The signed GRUB reads its configs from the server it came from: these are for one that came over HTTP.
  app.get('/' + GRUB_ENTRY_PATH, { schema: { ...open('getGrubEntry', 'The GRUB config that hands over to the NIC\'s own config'), response: { 200: script } } }, async (_req, reply) => {
    reply.header('content-type', ipxe).header('cache-control', 'no-store');
    return templates.render('grub/entry.cfg', {});
  });

  app.get('/grub/:file', { config: AHEAD_OF_BOOT_STEPS, schema: { ...open('getGrubConfig', "A machine's GRUB config, /grub/grub.cfg-01-<mac>"), params: Type.Object({ file: Type.String() }), response: { 200: script, ...errors(404, 429) } } }, async (req, reply) => {
    const m = /^grub\.cfg-01-(.+)$/.exec(req.params.file);
    const mac = m ? normalizeMac(m[1]!) : null;
    if (!mac) throw new HttpError(404, `expected /grub/grub.cfg-01-<mac>, got /grub/${req.params.file}`);
    return serveScript(req, reply, 'grub', mac);
  });

  /** A machine's iPXE script or GRUB config, rendered from its boot plan, recorded as a boot event. */
  async function serveScript(req: FastifyRequest, reply: FastifyReply, language: 'ipxe' | 'grub', mac: string) {
    const grub = language === 'grub';
    const facts = { ...httpFacts(req, mac), ...(grub ? { firmware: 'grub' as const } : {}) };
    const plan = decide(facts, { ...decideContext, machine: cache.byCanonicalMac(mac) });
    // Every script fetch is a boot event (and, for a new MAC, maybe a registration): bounded.
    machineDoor.requireEvent(req, mac, plan.machine !== null);
    const { script, error } = renderScript(language, plan, config, templates);
    const template = grub ? GRUB_TEMPLATE : plan.template;
    if (!plan.machine || machineDoor.mayRecordFor(req, plan.machine)) {
      await bootSteps.record(bootStep(plan, grub ? 'boot-config' : 'ipxe-script', { template, ...(error ? { error } : {}) }));
    }
    if (error) req.log.error({ mac, template }, `template error: ${error}`);
    return reply.header('content-type', ipxe).header('cache-control', 'no-store').send(script);
  }

  // UEFI HTTP Boot clients download their first-stage loader by URL instead of TFTP.
  app.get('/loaders/:name', { schema: { ...open('getLoader', 'A first-stage loader, for UEFI HTTP Boot'), params: Type.Object({ name: Type.String() }), response: { 200: body('application/efi', 'the loader', Type.String({ contentMediaType: 'application/efi' })), ...errors(404) } } }, async (req, reply) => {
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
