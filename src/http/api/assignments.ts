import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { actorOf, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { AssignmentBody } from '../schemas.js';
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { AssignmentRecord, ListOf } from '../response-schemas.js';

/** /v1/assignments: images assigned to groups of machines by selector. */
export const assignmentRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const write = { onRequest: requireRole(cmdb, 'operator') };
  const tags = ['assignments'];
  const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

  // In the order the boot decision tries them.
  app.get('/v1/assignments', { ...read, schema: { tags, operationId: 'listAssignments', summary: 'List image assignments in the order the boot decision tries them', response: { 200: json(ListOf(AssignmentRecord), 'every assignment'), ...errors(...AUTH_ERRORS) } } }, async () => ({ items: cmdb.assignments.list() }));

  app.post('/v1/assignments', { ...write, schema: { tags, operationId: 'createAssignment', summary: 'Assign an image to the machines a selector matches', body: AssignmentBody, response: { 201: json(AssignmentRecord, 'the assignment'), ...errors(400, ...AUTH_ERRORS, 409) } } }, async (req, reply) => {
    const a = cmdb.change(actorOf(req), 'assignment.add', (r) => `#${r.id}`, () => cmdb.assignments.add(req.body), { ...req.body });
    return reply.code(201).send(a);
  });

  app.delete('/v1/assignments/:id', { ...write, schema: { tags, operationId: 'deleteAssignment', summary: 'Remove an assignment', params: IdParams, response: { 200: json(AssignmentRecord, 'the assignment removed'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req) =>
    cmdb.change(actorOf(req), 'assignment.remove', `#${req.params.id}`, () => cmdb.assignments.remove(req.params.id)),
  );
};
