import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { BmcInput } from '../../cmdb/bmcs.js';
import { SecretBox, secretKeyPath } from '../../cmdb/secret-box.js';
import { parseSelector } from '../../cmdb/selector.js';
import type { Machine } from '../../cmdb/types.js';
import { PowerService, type PowerResult } from '../../power/service.js';
import type { PowerAction } from '../../power/types.js';
import { actorOf, HttpError, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { BmcBody, FleetPowerBody, PowerBody, RefParams } from '../schemas.js';
import { AUTH_ERRORS, empty, errors, json } from '../openapi.js';
import { BmcRecord, FleetPowerRecord, PowerFailure, PowerResultRecord } from '../response-schemas.js';

/** A single machine's power result as HTTP: 409 when it has no BMC or no credentials for it, 503 when the key file cannot open its password, 502 when its BMC failed. */
const statusOf = (r: PowerResult) => (r.ok ? 200 : r.failure === 'no-bmc' || r.failure === 'no-credentials' ? 409 : r.failure === 'secret-key' ? 503 : 502);

const powerFailures = {
  ...errors(400, ...AUTH_ERRORS, 404),
  409: json(PowerFailure, 'the machine has no BMC'),
  502: json(PowerFailure, 'the BMC failed'),
  503: json(PowerFailure, 'the secret key file cannot open the BMC password'),
};

/** A machine's BMC (write-only password) and power actions through it, for one machine or many. */
export const powerRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, config }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const write = { onRequest: requireRole(cmdb, 'operator') };
  const tags = ['power'];
  const box = new SecretBox(secretKeyPath(config.dataDir));
  const power = new PowerService(cmdb, config.power, box);

  app.get('/v1/machines/:ref/bmc', { ...read, schema: { tags, operationId: 'getBmc', summary: "Show a machine's BMC (never its password)", params: RefParams, response: { 200: json(BmcRecord, 'the BMC'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req) => {
    const m = cmdb.machines.get(req.params.ref);
    const bmc = cmdb.bmcs.get(m.id);
    if (!bmc) throw new HttpError(404, `machine ${req.params.ref} has no BMC`);
    return bmc;
  });

  app.put('/v1/machines/:ref/bmc', { ...write, schema: { tags, operationId: 'setBmc', summary: "Set a machine's BMC", params: RefParams, body: BmcBody, response: { 200: json(BmcRecord, 'the BMC as stored'), ...errors(400, ...AUTH_ERRORS, 404, 503) } } }, async (req) => {
    const m = cmdb.machines.get(req.params.ref);
    const { password, ...shown } = req.body as BmcInput;
    return cmdb.change(actorOf(req), 'machine.bmc.set', m.macs[0] ?? String(m.id), () => cmdb.bmcs.set(m.id, req.body as BmcInput, box), {
      ...shown,
      passwordChanged: password !== undefined,
    });
  });

  app.delete('/v1/machines/:ref/bmc', { ...write, schema: { tags, operationId: 'deleteBmc', summary: "Remove a machine's BMC", params: RefParams, response: { 204: empty('removed'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req, reply) => {
    const m = cmdb.machines.get(req.params.ref);
    cmdb.change(actorOf(req), 'machine.bmc.remove', m.macs[0] ?? String(m.id), () => cmdb.bmcs.remove(m.id));
    return reply.code(204).send();
  });

  app.get('/v1/machines/:ref/power', { ...read, schema: { tags, operationId: 'getPower', summary: "Ask a machine's BMC for its power state", params: RefParams, response: { 200: json(PowerResultRecord, 'the power state'), ...powerFailures } } }, async (req, reply) => {
    const [r] = await power.act([cmdb.machines.get(req.params.ref)], 'status', actorOf(req));
    return reply.code(statusOf(r!)).send(r!.ok ? r : { error: r!.error, result: r });
  });

  app.post('/v1/machines/:ref/power', { ...write, schema: { tags, operationId: 'powerMachine', summary: 'Power a machine on, off, cycle or reset it through its BMC', params: RefParams, body: PowerBody, response: { 200: json(PowerResultRecord, 'done'), ...powerFailures } } }, async (req, reply) => {
    const [r] = await power.act([cmdb.machines.get(req.params.ref)], req.body.action as PowerAction, actorOf(req));
    return reply.code(statusOf(r!)).send(r!.ok ? r : { error: r!.error, result: r });
  });

  app.post('/v1/power', { ...write, schema: { tags, operationId: 'powerFleet', summary: 'Power many machines, by selector or by list', body: FleetPowerBody, response: { 200: json(FleetPowerRecord, 'each machine\'s result'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req) => {
    const { action, selector, machines } = req.body;
    if ((selector === undefined) === (machines === undefined)) throw new HttpError(400, 'body: give either selector or machines');
    const targets: Machine[] = selector !== undefined ? cmdb.machines.matching(parseSelector(selector)) : machines!.map((ref) => cmdb.machines.get(ref));
    const results = await power.act(targets, action as PowerAction, actorOf(req));
    return { action, ok: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length, results };
  });
};
