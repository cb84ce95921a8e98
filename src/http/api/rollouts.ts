import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Cmdb } from '../../cmdb/index.js';
import { changeRollout, rollBackRollout, startRollout } from '../../rollout/commands.js';
import { actorOf, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { ListOf, RolloutDetail, RolloutRecord } from '../response-schemas.js';

const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const StartBody = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 200, description: 'image id (or a unique prefix), NAME@CHANNEL or NAME:VERSION' }),
    selector: Type.String({ maxLength: 1024, description: 'a selector: role=kvm,site=par1 or role in (kvm,gpu)' }),
    channel: Type.Optional(Type.String({ maxLength: 32, description: 'promoted to the image when the last wave passes' })),
    waves: Type.Optional(Type.String({ maxLength: 256, description: 'cumulative targets, default 1,10%,50%,100%' })),
    maxParallel: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    bootTimeout: Type.Optional(Type.String({ maxLength: 16, description: 'default 10m' })),
    maxFailures: Type.Optional(Type.String({ maxLength: 16, description: '0 (default), N or P% of each wave' })),
    soak: Type.Optional(Type.String({ maxLength: 16, description: 'default 2m' })),
  },
  { additionalProperties: false },
);

/** A rollout with its waves and each wave's machines: what `livery rollout show` prints. */
export function rolloutDetail(cmdb: Cmdb, id: number) {
  const rollout = cmdb.rollouts.get(id);
  const machines = cmdb.rollouts.machines(id);
  return {
    ...rollout,
    waves: cmdb.rollouts.waves(id).map((w) => ({
      ...w,
      soakUntil: w.soakUntil === null ? null : new Date(w.soakUntil).toISOString(),
      machines: machines
        .filter((m) => m.wave === w.wave)
        .map((m) => {
          const machine = cmdb.machines.find(m.machineId);
          return {
            machineId: m.machineId,
            hostname: machine?.hostname ?? null,
            mac: machine?.macs[0] ?? null,
            phase: m.phase,
            state: m.state,
            since: m.updatedAt,
            expectedImageId: m.expectedImageId,
            previousImage: m.previousImage,
            cycles: m.cycles,
            detail: m.detail,
          };
        }),
    })),
  };
}

/** /v1/rollouts: start (publisher), read (reader), pause, resume, abort and roll back (operator: they power machines). */
export const rolloutRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, config }) => {
  const tags = ['rollouts'];
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const operate = { onRequest: requireRole(cmdb, 'operator') };

  app.post('/v1/rollouts', { onRequest: requireRole(cmdb, 'publisher'), schema: { tags, operationId: 'startRollout', summary: 'Start a rollout of an image to the machines a selector matches, in waves', body: StartBody, response: { 201: json(RolloutDetail, 'the rollout'), ...errors(400, ...AUTH_ERRORS, 404, 409) } } }, async (req, reply) => {
    const body = req.body;
    const image = cmdb.images.byRef(body.image);
    const rollout = startRollout(cmdb, config, { ...body, image: image.id }, actorOf(req));
    return reply.code(201).send(rolloutDetail(cmdb, rollout.id));
  });

  app.get('/v1/rollouts', {
      ...read,
      schema: {
        tags,
        operationId: 'listRollouts',
        summary: 'List rollouts, newest first',
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }),
        response: { 200: json(ListOf(RolloutRecord), 'the rollouts'), ...errors(400, ...AUTH_ERRORS) },
      },
    }, async (req) => ({
    items: cmdb.rollouts.list(req.query.limit ?? 100),
  }));

  app.get('/v1/rollouts/:id', { ...read, schema: { tags, operationId: 'getRollout', summary: 'Show a rollout with its waves and machines', params: IdParams, response: { 200: json(RolloutDetail, 'the rollout'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req) => rolloutDetail(cmdb, req.params.id));

  for (const action of ['pause', 'resume', 'abort'] as const) {
    app.post(`/v1/rollouts/:id/${action}`, {
        ...operate,
        schema: { tags, operationId: `${action}Rollout`, summary: `${action[0]!.toUpperCase()}${action.slice(1)} a rollout`, params: IdParams, response: { 200: json(RolloutDetail, 'the rollout'), ...errors(400, ...AUTH_ERRORS, 404, 409) } },
      },
      async (req) => {
      changeRollout(cmdb, req.params.id, action, actorOf(req));
      return rolloutDetail(cmdb, req.params.id);
    });
  }

  app.post('/v1/rollouts/:id/rollback', { ...operate, schema: { tags, operationId: 'rollBackRollout', summary: 'Roll a rollout back: its machines return to their previous images', params: IdParams, response: { 200: json(RolloutDetail, 'the rollout'), ...errors(400, ...AUTH_ERRORS, 404, 409) } } }, async (req) => {
    rollBackRollout(cmdb, req.params.id, actorOf(req));
    return rolloutDetail(cmdb, req.params.id);
  });
};
