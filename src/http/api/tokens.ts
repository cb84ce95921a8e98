import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Role } from '../../cmdb/types.js';
import { actorOf, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { Page, TokenCreated, TokenRecord } from '../response-schemas.js';

/** /v1/tokens: API tokens (admin only). The secret is shown once, at creation. */
export const tokenRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb }) => {
  const admin = { onRequest: requireRole(cmdb, 'admin') };
  const tags = ['tokens'];
  app.get('/v1/tokens', { ...admin, schema: { tags, operationId: 'listTokens', summary: 'List API tokens (never their secrets)', response: { 200: json(Page(TokenRecord), 'every token'), ...errors(...AUTH_ERRORS) } } }, async () => ({ items: cmdb.tokens.list(), next: null }));
  app.post(
    '/v1/tokens',
    {
      ...admin,
      schema: {
        tags,
        operationId: 'createToken',
        summary: 'Create an API token; its secret is shown this once',
        response: { 201: json(TokenCreated, 'the token and its secret'), ...errors(400, ...AUTH_ERRORS, 409) },
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
  app.delete('/v1/tokens/:id', {
    ...admin,
    schema: { tags, operationId: 'revokeToken', summary: 'Revoke an API token', params: Type.Object({ id: Type.String() }), response: { 200: json(TokenRecord, 'the token revoked'), ...errors(400, ...AUTH_ERRORS, 404) } },
  }, async (req) =>
    cmdb.change(actorOf(req), 'token.revoke', req.params.id, () => cmdb.tokens.revoke(req.params.id)),
  );
};
