import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { decide, GRUB_TEMPLATE, renderScript } from '../../boot/index.js';
import { macOfRef } from '../../cmdb/refs.js';
import { parseCidr } from '../../net/ipv4.js';
import { HttpError, requireRole } from '../auth.js';
import { httpFacts } from '../client-facts.js';
import type { HttpContext } from '../context.js';
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { ExplainRecord } from '../response-schemas.js';

/**
 * Why a machine boots what it boots: the boot plan and the script its door would render,
 * for an operator (`livery machine explain`). Reads only; nothing is recorded.
 */
export const explainRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, ctx) => {
  const { cmdb, config, templates } = ctx;

  app.get(
    '/v1/machines/:ref/explain',
    {
      onRequest: requireRole(cmdb, 'reader'),
      schema: {
        tags: ['machines'],
        operationId: 'explainMachine',
        summary: 'Why a machine boots what it boots: its boot plan and rendered script',
        response: { 200: json(ExplainRecord, 'the boot plan'), ...errors(400, ...AUTH_ERRORS, 404) },
        params: Type.Object({ ref: Type.String() }),
        querystring: Type.Object({
          firmware: Type.Optional(Type.Union([Type.Literal('bios-pxe'), Type.Literal('uefi-pxe'), Type.Literal('uefi-http'), Type.Literal('ipxe'), Type.Literal('grub')])),
          subnet: Type.Optional(Type.String()),
        }),
      },
    },
    async (req) => {
      // A MAC no machine has yet is explained as an unknown machine would be booted.
      const known = cmdb.machines.find(req.params.ref);
      const asMac = macOfRef(req.params.ref);
      const mac = known ? (asMac && known.macs.includes(asMac) ? asMac : known.macs[0]!) : asMac;
      if (!mac) throw new HttpError(404, `machine ${req.params.ref} not found`);
      const hint = req.query.subnet ? cmdb.subnets.get(req.query.subnet) : null;
      const facts = { ...httpFacts(req, mac), door: 'explain' as const, firmware: req.query.firmware ?? 'ipxe', subnetHint: hint ? parseCidr(hint.cidr)!.network : null };
      const plan = decide(facts, ctx);
      // A machine on the signed chain ends up running GRUB: show the config GRUB would get.
      const grub = plan.chain.chain === 'shim';
      const { script, error } = renderScript(grub ? 'grub' : 'ipxe', plan, config, templates);
      return {
        mac,
        machine: plan.machine,
        subnet: plan.subnet?.name ?? null,
        policy: plan.policy,
        action: plan.action,
        discover: plan.discover,
        selector: plan.machine?.image ?? (plan.subnet?.defaultImage ?? null),
        image: plan.image ? { id: plan.image.id, name: plan.image.name, version: plan.image.version, channel: plan.image.channel } : null,
        next: plan.next,
        chain: plan.chain,
        cmdline: plan.cmdline,
        template: grub ? GRUB_TEMPLATE : plan.template,
        reasons: plan.reasons,
        script,
        templateError: error,
      };
    },
  );
};
