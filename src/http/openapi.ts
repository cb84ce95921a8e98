import swagger from '@fastify/swagger';
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ErrorBody } from './response-schemas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A request body for the document only: a streamed body (a bundle, an import) is read and
     * checked by its route, a row or a tar entry at a time, not by fastify's validation. By
     * content type; each schema says what the body is (the document keeps no body description
     * beside per-type schemas).
     */
    documentedBody?: Record<string, TSchema>;
  }
}

/**
 * The API document, GET /v1/openapi.json, made by @fastify/swagger from the routes' own schemas.
 * Only routes with tags are in it: the console's HTML pages are for browsers, not clients.
 */
export async function installOpenApi(app: FastifyInstance): Promise<void> {
  app.addSchema(ErrorBody);
  // The routes' response schemas document the API; they are not a filter. fast-json-stringify
  // would drop any field a schema forgot (and coerce a wrong type) without a word: the answer
  // goes out as the route made it, and the contract test checks it against the document.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'livery',
        description: 'Diskless PXE boot server and live-image catalog. Send an API token as `Authorization: Bearer <token>`; the routes machines call while they boot are open.',
        version: '1',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: '/', description: 'this livery' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token (livery token create)' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'machines', description: 'the machine inventory, keyed by MAC, hostname or id; boot plans, traces and facts' },
        { name: 'subnets', description: 'address blocks, pools and the policy for unknown machines' },
        { name: 'leases', description: 'what the DHCP server handed out' },
        { name: 'images', description: 'the image catalog and its channels' },
        { name: 'assignments', description: 'images assigned to machines by selector' },
        { name: 'rollouts', description: 'images rolled out in waves, gated on health' },
        { name: 'power', description: 'BMCs and power actions' },
        { name: 'events', description: 'the event stream' },
        { name: 'audit', description: 'who changed what' },
        { name: 'tokens', description: 'API tokens (admin)' },
        { name: 'boot', description: 'what booting firmware fetches: iPXE scripts, GRUB configs, loaders (open)' },
        { name: 'artifacts', description: "images' kernels, initrds and root filesystems for booting machines (open)" },
        { name: 'machine-facing', description: 'what a booted machine asks and reports: metadata, cloud-init, phone-home, health, facts (open)' },
        { name: 'monitoring', description: 'liveness and Prometheus metrics (open)' },
        { name: 'nodes', description: 'the livery nodes sharing this CMDB' },
      ],
    },
    hideUntagged: true,
    transform: ({ schema, url, route }) => {
      const documented = route.config?.documentedBody;
      const content = documented && Object.fromEntries(Object.entries(documented).map(([type, body]) => [type, { schema: body }]));
      return { schema: content ? { ...schema, body: { content, required: true } } : schema, url };
    },
    // Shared schemas keep their $id as their name under components/schemas.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

/** Routes machines call while they boot hold no token: open in the document. */
export const OPEN = [] as { [name: string]: string[] }[];

const ErrorRef = Type.Ref(ErrorBody);
const WHY: Record<number, string> = {
  400: 'bad input: the message names the field and what it expects',
  401: 'no token, or an unknown or revoked one',
  403: "the token's role does not allow this",
  404: 'no such record',
  409: 'conflicts with the current state',
  413: 'the body is larger than allowed',
  415: 'unsupported content type',
  429: "past the machine door's limits",
  502: 'the BMC failed',
  503: 'the secret key file cannot open stored secrets',
  507: "no space left on livery's data disk",
};

/** Error answers (the shared `Error` schema) for these status codes. */
export function errors(...codes: number[]): Record<number, TSchema> {
  return Object.fromEntries(codes.map((c) => [c, Type.Unsafe<{ error: string; field?: string }>({ ...ErrorRef, description: WHY[c] ?? 'error' })]));
}

/** The errors every token-checked route can answer. */
export const AUTH_ERRORS = [401, 403] as const;

/** A JSON answer with a description (the document requires one per status). */
export const json = <T extends TSchema>(schema: T, description: string): T => ({ ...schema, description });

/** A non-JSON answer: its content type and a description. */
export function body(contentType: string, description: string, schema: TSchema = Type.String()) {
  return Type.Unsafe<unknown>({ description, content: { [contentType]: { schema } } });
}

/** An answer with no body (204, 304). */
export const empty = (description: string) => Type.Unsafe<void>({ description, type: 'null' });
