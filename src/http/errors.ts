import type { TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import type { FastifyError, FastifyInstance } from 'fastify';
import { CmdbError } from '../cmdb/errors.js';
import { cmdbUnavailable } from '../cmdb/postgres/unavailable.js';
import { kindOf } from '../cmdb/validate.js';
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
    if (cmdbUnavailable(err)) {
      request.log.error({ err }, 'the CMDB cannot be reached');
      return reply.code(503).send({ error: `the CMDB cannot be reached (${err.message}); retry once it is back` });
    }
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

/** Names the field and what it expects: `body.state: expected one of "a", "b"`. */
function describeValidation(err: FastifyError): string {
  const errors = err.validation!;
  // A failed union reports each member's failure first, then the union: the union says it all.
  const v = errors.find((e) => e.keyword === 'anyOf') ?? errors[0]!;
  const where = `${err.validationContext ?? 'body'}${v.instancePath.replaceAll('/', '.')}`;
  const params = v.params as Record<string, unknown>;
  if (v.keyword === 'additionalProperties') return `${where}: unknown field ${JSON.stringify(params.additionalProperty)}`;
  if (v.keyword === 'required') return `${where}: missing field ${JSON.stringify(params.missingProperty)}`;
  const schema = (v as { parentSchema?: TSchema }).parentSchema;
  if (schema && ['type', 'anyOf', 'const', 'enum'].includes(v.keyword)) return `${where}: expected ${describeExpected(schema)}, got ${kindOf((v as { data?: unknown }).data)}`;
  return `${where}: ${v.message}`;
}

/**
 * The first problem of a value against a request schema, named like a validation error; for
 * bodies checked outside fastify's validation (each row of a JSON import). Own keys only, so
 * `toString` or `__proto__` are unknown fields like any other.
 */
export function schemaProblem(schema: TSchema, value: unknown): string | null {
  const first = Value.Errors(schema, value).First();
  if (!first) return null;
  const field = first.path.split('/').filter(Boolean).join('.') || 'row';
  if (first.type === ValueErrorType.ObjectAdditionalProperties) return `unknown field ${JSON.stringify(field)}`;
  if (first.type === ValueErrorType.ObjectRequiredProperty) return `${field}: missing field`;
  return `${field}: expected ${describeExpected(first.schema)}, got ${kindOf(first.value)}`;
}

/** What a schema accepts, in words: "a string or null", "one of \"retry\", \"exit\"". */
export function describeExpected(schema: TSchema): string {
  const members = schema.anyOf as TSchema[] | undefined;
  if (members?.every((m) => 'const' in m)) return `one of ${members.map((m) => JSON.stringify(m.const)).join(', ')}`;
  if (members) return members.map(describeExpected).join(' or ');
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.map((e: unknown) => JSON.stringify(e)).join(', ')}`;
  if (schema.type === 'object' && schema.patternProperties) return 'an object of strings';
  return ARTICLE[schema.type as string] ?? String(schema.type ?? 'a valid value');
}

const ARTICLE: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  null: 'null',
};
