import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { SubnetInput } from '../../cmdb/types.js';
import { actorOf, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { RefParams, SubnetBody } from '../schemas.js';
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { Page, SubnetRecord } from '../response-schemas.js';

/** /v1/subnets: address blocks, pools and the policy for machines the CMDB does not know. */
export const subnetRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const write = { onRequest: requireRole(cmdb, 'operator') };
  const tags = ['subnets'];

  app.get('/v1/subnets', { ...read, schema: { tags, operationId: 'listSubnets', summary: 'List subnets', response: { 200: json(Page(SubnetRecord), 'every subnet'), ...errors(...AUTH_ERRORS) } } }, async () => ({ items: cmdb.subnets.list(), next: null }));
  app.get('/v1/subnets/:ref', { ...read, schema: { tags, operationId: 'getSubnet', summary: 'Show a subnet by name, CIDR or id', params: RefParams, response: { 200: json(SubnetRecord, 'the subnet'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req) => cmdb.subnets.get(req.params.ref));
  app.post('/v1/subnets', { ...write, schema: { tags, operationId: 'createSubnet', summary: 'Add a subnet', body: SubnetBody, response: { 201: json(SubnetRecord, 'the subnet as stored'), ...errors(400, ...AUTH_ERRORS, 409) } } }, async (req, reply) => {
    const input = req.body as SubnetInput;
    return reply.code(201).send(cmdb.change(actorOf(req), 'subnet.create', (s) => s.cidr, () => cmdb.subnets.create(input), { ...input }));
  });
  app.patch('/v1/subnets/:ref', { ...write, schema: { tags, operationId: 'updateSubnet', summary: 'Change some fields of a subnet', params: RefParams, body: SubnetBody, response: { 200: json(SubnetRecord, 'the subnet as stored'), ...errors(400, ...AUTH_ERRORS, 404, 409) } } }, async (req) => {
    const input = req.body as SubnetInput;
    return cmdb.change(actorOf(req), 'subnet.update', (s) => s.cidr, () => cmdb.subnets.update(req.params.ref, input), { ...input });
  });
  app.delete('/v1/subnets/:ref', { ...write, schema: { tags, operationId: 'deleteSubnet', summary: 'Delete a subnet', params: RefParams, response: { 200: json(SubnetRecord, 'the subnet deleted'), ...errors(400, ...AUTH_ERRORS, 404, 409) } } }, async (req) =>
    cmdb.change(actorOf(req), 'subnet.delete', (s) => s.cidr, () => cmdb.subnets.remove(req.params.ref)),
  );
};
