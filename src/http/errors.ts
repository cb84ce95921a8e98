import type { FastifyError, FastifyInstance } from 'fastify';
import { CmdbError } from '../cmdb/errors.js';
import { SecretKeyError } from '../cmdb/secret-box.js';
import { HttpError } from './auth.js';

const STATUS: Record<CmdbError['kind'], number> = { invalid: 400, 'not-found': 404, conflict: 409 };

/**
 * One JSON error shape for every route: `{ "error": "<what was wrong>", "field"?: "<which>" }`.
 * Domain errors carry their own message; schema errors are rewritten to name the field.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | CmdbError | HttpError, request, reply) => {
    if (err instanceof CmdbError) return reply.code(STATUS[err.kind]).send({ error: err.message, field: err.field ?? undefined });
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.message });
    // The key file for stored secrets is missing or wrong: the server cannot do this until it is restored.
    if (err instanceof SecretKeyError) return reply.code(503).send({ error: err.message });
    const code = (err as { code?: string }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') {
      request.log.error({ err }, 'out of disk space');
      return reply.code(507).send({ error: `no space left on livery's data disk (${code}); nothing was changed, free space and retry` });
    }
    const fe = err as FastifyError;
    if (fe.validation) return reply.code(400).send({ error: describeValidation(fe) });
    if (fe.statusCode && fe.statusCode < 500) return reply.code(fe.statusCode).send({ error: fe.message });
    request.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal error; see the server log' });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` }));
}

function describeValidation(err: FastifyError): string {
  return err
    .validation!.slice(0, 5)
    .map((v) => {
      const where = `${err.validationContext ?? 'body'}${v.instancePath.replaceAll('/', '.')}`;
      const params = v.params as Record<string, unknown>;
      if (v.keyword === 'additionalProperties') return `${where}: unknown field ${JSON.stringify(params.additionalProperty)}`;
      if (v.keyword === 'required') return `${where}: missing field ${JSON.stringify(params.missingProperty)}`;
      return `${where}: ${v.message}`;
    })
    .join('; ');
}
