import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Cmdb } from '../cmdb/index.js';
import type { ApiToken, Role } from '../cmdb/types.js';

/**
 * Roles nest: admin can do everything; operator writes the CMDB; publisher writes the catalog;
 * reader only reads. Machines never hold tokens: boot endpoints are read-only and open.
 */
const GRANTS: Record<Role, Role[]> = {
  admin: ['admin', 'operator', 'publisher', 'reader'],
  operator: ['operator', 'reader'],
  publisher: ['publisher', 'reader'],
  reader: ['reader'],
};

declare module 'fastify' {
  interface FastifyRequest {
    token: ApiToken | null;
  }
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** A preHandler that admits requests whose bearer token carries `role` (or a role that includes it). */
export function requireRole(cmdb: Cmdb, role: Role) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) throw new HttpError(401, 'missing bearer token (Authorization: Bearer <token>)');
    const token = cmdb.tokens.verify(m[1]!);
    if (!token) throw new HttpError(401, 'invalid or revoked token');
    if (!GRANTS[token.role].includes(role)) throw new HttpError(403, `this needs the ${role} role; the token has ${token.role}`);
    request.token = token;
  };
}

/** The name written to the audit log for a request's writes. */
export const actorOf = (request: FastifyRequest): string => (request.token ? `token:${request.token.name}` : 'anonymous');
