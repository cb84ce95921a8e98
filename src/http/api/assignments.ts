import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { actorOf, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { AssignmentBody } from '../schemas.js';

/** /v1/assignments: images assigned to groups of machines by selector. */
export const assignmentRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const write = { onRequest: requireRole(cmdb, 'operator') };
  const tags = ['assignments'];
  const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

  // In the order the boot decision tries them.
  app.get('/v1/assignments', { ...read, schema: { tags } }, async () => ({ items: cmdb.assignments.list() }));

  app.post('/v1/assignments', { ...write, schema: { tags, body: AssignmentBody } }, async (req, reply) => {
    const a = cmdb.change(actorOf(req), 'assignment.add', (r) => `#${r.id}`, () => cmdb.assignments.add(req.body), { ...req.body });
    return reply.code(201).send(a);
  });

  app.delete('/v1/assignments/:id', { ...write, schema: { tags, params: IdParams } }, async (req) =>
    cmdb.change(actorOf(req), 'assignment.remove', `#${req.params.id}`, () => cmdb.assignments.remove(req.params.id)),
  );
};
