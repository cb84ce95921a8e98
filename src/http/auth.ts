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

/** True when a token of role `has` may do what needs role `needs`. */
export const grants = (has: Role, needs: Role): boolean => GRANTS[has].includes(needs);

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

/**
 * An onRequest hook that admits requests whose bearer token carries `role` (or a role that
 * includes it). It runs before the body is read: a refused request costs a header parse, and
 * its connection is closed after the answer instead of reading (or waiting for) the rest.
 */
export function requireRole(cmdb: Cmdb, role: Role) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    const token = m ? cmdb.tokens.verify(m[1]!) : null;
    const refusal = !m
      ? new HttpError(401, 'missing bearer token (Authorization: Bearer <token>)')
      : !token
        ? new HttpError(401, 'invalid or revoked token')
        : !grants(token.role, role)
          ? new HttpError(403, `this needs the ${role} role; the token has ${token.role}`)
          : null;
    if (refusal) {
      closeUnreadBody(request, reply);
      throw refusal;
    }
    cmdb.tokens.noteUse(token!);
    request.token = token;
  };
}

/** Refusing before the body is read: close the connection after the answer rather than drain the body. */
export function closeUnreadBody(request: FastifyRequest, reply: FastifyReply): void {
  if (!request.raw.complete) reply.header('connection', 'close');
}

/** The name written to the audit log for a request's writes. */
export const actorOf = (request: FastifyRequest): string => (request.token ? `token:${request.token.name}` : 'anonymous');
