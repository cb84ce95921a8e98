import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { AuditRecord, Page } from '../response-schemas.js';

const MAX_PAGE = 1000;

/** Who changed what, when: the audit log, newest first, a page at a time. */
export const auditRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb }) => {
  app.get(
    '/v1/audit',
    {
      onRequest: requireRole(cmdb, 'operator'),
      schema: {
        tags: ['audit'],
        operationId: 'listAudit',
        summary: 'The audit log, newest first',
        response: { 200: json(Page(AuditRecord), 'a page of entries'), ...errors(400, ...AUTH_ERRORS) },
        querystring: Type.Object({
          since: Type.Optional(Type.String({ format: 'date-time', description: 'only entries at or after this time (ISO 8601)' })),
          actor: Type.Optional(Type.String({ minLength: 1, description: 'exactly this actor, e.g. token:ci' })),
          before: Type.Optional(Type.Integer({ minimum: 1, description: 'entries older than this id (the previous page\'s next)' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100 })),
        }),
      },
    },
    async (req) => {
      const { since, actor, before, limit = 100 } = req.query;
      const items = cmdb.audit.list({ since: since === undefined ? undefined : Date.parse(since), actor, before, limit });
      return { items, next: items.length === limit ? items.at(-1)!.id : null };
    },
  );
};
