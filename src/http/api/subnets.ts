import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { SubnetInput } from '../../cmdb/types.js';
import { actorOf, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { RefParams, SubnetBody } from '../schemas.js';

/** /v1/subnets: address blocks, pools and the policy for machines the CMDB does not know. */
export const subnetRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const write = { onRequest: requireRole(cmdb, 'operator') };
  const tags = ['subnets'];

  app.get('/v1/subnets', { ...read, schema: { tags } }, async () => ({ items: cmdb.subnets.list(), next: null }));
  app.get('/v1/subnets/:ref', { ...read, schema: { tags, params: RefParams } }, async (req) => cmdb.subnets.get(req.params.ref));
  app.post('/v1/subnets', { ...write, schema: { tags, body: SubnetBody } }, async (req, reply) => {
    const input = req.body as SubnetInput;
    return reply.code(201).send(cmdb.change(actorOf(req), 'subnet.create', (s) => s.cidr, () => cmdb.subnets.create(input), { ...input }));
  });
  app.patch('/v1/subnets/:ref', { ...write, schema: { tags, params: RefParams, body: SubnetBody } }, async (req) => {
    const input = req.body as SubnetInput;
    return cmdb.change(actorOf(req), 'subnet.update', (s) => s.cidr, () => cmdb.subnets.update(req.params.ref, input), { ...input });
  });
  app.delete('/v1/subnets/:ref', { ...write, schema: { tags, params: RefParams } }, async (req) =>
    cmdb.change(actorOf(req), 'subnet.delete', (s) => s.cidr, () => cmdb.subnets.remove(req.params.ref)),
  );
};
