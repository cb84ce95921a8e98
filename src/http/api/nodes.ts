import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ROLLOUT_ROLE } from '../../daemon/node-heartbeat.js';
import { requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { ListOf, NodeRecord } from '../response-schemas.js';

/** The livery nodes sharing this CMDB, alive or not by their heartbeats, and which drives rollouts. */
export const nodeRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, config }) => {
  app.get(
    '/v1/nodes',
    {
      onRequest: requireRole(cmdb, 'reader'),
      schema: {
        tags: ['nodes'],
        operationId: 'listNodes',
        summary: 'The livery nodes sharing this CMDB',
        response: { 200: json(ListOf(NodeRecord), 'every node that has run on this CMDB'), ...errors(...AUTH_ERRORS) },
      },
    },
    async () => {
      const now = Date.now();
      const leader = cmdb.nodes.leaderOf(ROLLOUT_ROLE, now);
      const items = cmdb.nodes.list().map((n) => ({
        ...n,
        alive: now - Date.parse(n.heartbeatAt) < config.node.deadAfterSeconds * 1000,
        roles: n.name === leader ? [ROLLOUT_ROLE] : [],
      }));
      return { items };
    },
  );
};
