import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Role } from '../../cmdb/types.js';
import { actorOf, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';

/** /v1/tokens: API tokens (admin only). The secret is shown once, at creation. */
export const tokenRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb }) => {
  const admin = { onRequest: requireRole(cmdb, 'admin') };
  const tags = ['tokens'];
  app.get('/v1/tokens', { ...admin, schema: { tags } }, async () => ({ items: cmdb.tokens.list(), next: null }));
  app.post(
    '/v1/tokens',
    {
      ...admin,
      schema: {
        tags,
        body: Type.Object(
          {
            name: Type.String(),
            role: Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('publisher'), Type.Literal('reader')]),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const { name, role } = req.body;
      const created = cmdb.change(actorOf(req), 'token.create', (r) => r.record.id, () => cmdb.tokens.create(name, role as Role), { name, role });
      return reply.code(201).send({ ...created.record, token: created.token });
    },
  );
  app.delete('/v1/tokens/:id', { ...admin, schema: { tags, params: Type.Object({ id: Type.String() }) } }, async (req) =>
    cmdb.change(actorOf(req), 'token.revoke', req.params.id, () => cmdb.tokens.revoke(req.params.id)),
  );
};
