import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Middleware } from 'openapi-fetch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle } from '../../helpers/bundle.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../../..');
/** Where the document and the client generated from it go (calls.ts imports the client's types from here). */
const OUT = join(ROOT, 'test/.tmp/openapi');

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

let s: TestServer;
let doc: Doc;
const docPath = join(OUT, 'openapi.json');

beforeAll(async () => {
  s = await startTestServer();
  doc = (await (await s.api('/v1/openapi.json')).json()) as Doc;
  mkdirSync(OUT, { recursive: true });
  writeFileSync(docPath, JSON.stringify(doc, null, 2));
});
afterAll(() => s.stop());

describe('the API document', () => {
  it('passes redocly lint with no error and no warning', async () => {
    const out = await run('npx', ['redocly', 'lint', '--config', join(ROOT, 'redocly.yaml'), '--format', 'json', docPath], { cwd: ROOT }).catch((err) => err);
    const report = JSON.parse(out.stdout) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] };
    expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 120_000);

  it('gives every operation an id, a summary, tags, its security and a schema for each answer with a body', () => {
    const ids = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops) as [string, Operation & { operationId?: string; summary?: string; tags?: string[]; security?: unknown[] }][]) {
        expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z0-9]+$/);
        expect(ids.has(op.operationId!), `${op.operationId} is unique`).toBe(false);
        ids.add(op.operationId!);
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        expect(op.tags?.length, `${method} ${path}`).toBeGreaterThan(0);
        // Open: what machines call while they boot, and monitoring; everything else needs the bearer token (the document's default).
        const open =
          /^\/(healthz|metrics|boot|grub\/|loaders\/|images\/|cloud-init\/|v1\/metadata\/)/.test(path) ||
          /^\/v1\/machines\/\{mac\}\/(booted|health)$/.test(path) ||
          (path === '/v1/machines/{ref}/facts' && method === 'post');
        expect(op.security, `${method} ${path}`).toEqual(open ? [] : undefined);
        // Each declared answer has a description; errors use the one shared shape.
        for (const [status, r] of Object.entries(op.responses)) if (status.startsWith('4')) expect(r.content?.['application/json'], `${method} ${path} ${status}`).toBeDefined();
        // Every success has its schema (fastify serializes JSON answers with it), unless it has no body.
        const successes = Object.entries(op.responses).filter(([status]) => /^[23]/.test(status));
        expect(successes.length, `${method} ${path}: a success answer`).toBeGreaterThan(0);
        for (const [status, r] of successes) {
          if (status === '204' || status === '304') continue;
          const bodies = Object.values(r.content ?? {});
          expect(bodies.length > 0 && bodies.every((b) => b.schema !== undefined), `${method} ${path} ${status}: a schema for the body`).toBe(true);
        }
      }
    }
    expect(ids.size).toBeGreaterThan(45);
  });
});

describe('a client generated from the document', () => {
  it('type-checks real calls and gets answers that match the document', async () => {
    await run('npx', ['openapi-typescript', docPath, '--output', join(OUT, 'livery-api.d.ts')], { cwd: ROOT });
    // Type-check calls.ts against the generated client: a route whose document changed under it fails here.
    const tsc = await run('npx', ['tsc', '-p', join(ROOT, 'test/http/openapi/tsconfig.json')], { cwd: ROOT }).catch((err) => err);
    expect(`${tsc.stdout}${tsc.stderr}`).toBe('');

    const checked: string[] = [];
    const check = responseChecker(doc, checked);
    const calls = await import(pathToFileURL(join(import.meta.dirname, 'calls.ts')).href);
    const api = calls.liveryClient(s.url, s.token, check);
    const { tar } = await makeBundle('web', '1.0');
    const r = await calls.inventoryCalls(api, new Uint8Array(tar));

    expect(r.health.status).toBe('ok');
    expect(r.created).toMatchObject({ hostname: 'node1', macs: ['52:54:00:0a:00:01'], labels: { rack: 'r1' }, vars: { role: 'kvm' }, state: 'registered' });
    expect(r.warnings.join(' ')).toContain('no image named no-such-image');
    expect(r.updated.labels).toEqual({ rack: 'r2' });
    expect(r.shown).toEqual({ error: expect.stringContaining('nosuch') });
    expect(r.listed.items.map((m: { hostname: string }) => m.hostname)).toEqual(['node1']);
    expect(r.badState.error).toBe('querystring.state: expected one of "discovered", "registered", "retired", got a string');
    expect(r.explain.mac).toBe('52:54:00:0a:00:01');
    expect(r.noBmc.result.failure).toBe('no-bmc');
    expect(r.bmc).toMatchObject({ driver: 'ipmi', passwordSet: true });
    expect(JSON.stringify(r.bmc)).not.toContain('secret');
    expect(r.token.token).toBeTruthy();
    expect(r.image.channels).toEqual(['web@stable']);
    expect(r.images.items).toHaveLength(1);
    expect(r.history.items[0].action).toBe('promote');
    expect(r.assignments.items).toEqual([r.assignment]);
    expect(r.audit.items.length).toBeGreaterThan(3);
    expect(r.removed.state).toBe('retired');
    // Every answer above was checked against the document: each status, content type and body.
    expect(checked.length).toBeGreaterThanOrEqual(24);
    expect(checked).toEqual(expect.arrayContaining(['GET /v1/machines/{ref} 404', 'GET /v1/machines 400', 'GET /v1/machines/{ref}/power 409', 'POST /v1/images 201']));
  }, 180_000);
});

/**
 * An openapi-fetch middleware that checks each answer against the document: its status is
 * declared for the operation, its content type too, and a JSON body matches that schema
 * (closed objects: a field the document does not list fails, as does a missing one).
 */
function responseChecker(doc: Doc, checked: string[]): Middleware {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const inline = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(inline);
    if (node === null || typeof node !== 'object') return node;
    const ref = (node as { $ref?: string }).$ref;
    if (ref?.startsWith('#/components/schemas/')) return inline(doc.components.schemas[ref.slice('#/components/schemas/'.length)]);
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inline(v)]));
  };
  return {
    async onResponse({ request, response, schemaPath }) {
      const what = `${request.method} ${schemaPath} ${response.status}`;
      const declared = doc.paths[schemaPath]?.[request.method.toLowerCase()]?.responses[String(response.status)];
      if (!declared) throw new Error(`${what}: the document does not declare this answer`);
      const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
      if (!declared.content) {
        if ((await response.clone().text()) !== '') throw new Error(`${what}: a body where the document declares none`);
      } else {
        const content = declared.content[type];
        if (!content) throw new Error(`${what}: content type ${type} is not among ${Object.keys(declared.content).join(', ')}`);
        if (type === 'application/json') {
          const validate = ajv.compile(inline(content.schema) as object);
          const body = await response.clone().json();
          if (!validate(body)) throw new Error(`${what}: the body does not match the document: ${validate.errors!.map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('; ')}\n${JSON.stringify(body).slice(0, 2000)}`);
        }
      }
      checked.push(what);
      return undefined;
    },
  };
}
