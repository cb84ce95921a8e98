import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpTables } from '../helpers/db-snapshot.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
  await s.api('/v1/subnets', { method: 'POST', json: { cidr: '10.50.0.0/24', name: 'lan' } });
  await s.api('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:50:00:01'], hostname: 'in1', labels: { rack: 'r0' } } });
});
afterAll(() => s.stop());

const answer = async (res: Response) => ({ status: res.status, body: await res.json() });
const importJson = async (rows: unknown) => answer(await s.api('/v1/machines/import', { method: 'POST', json: rows }));

describe('bad input is a 4xx naming the field and what was expected', () => {
  it('GET /v1/subnets/%25 is a 404, not a 500', async () => {
    expect(await answer(await s.api('/v1/subnets/%25'))).toEqual({ status: 404, body: { error: 'subnet % not found' } });
  });

  it('POST /v1/images with JSON or CSV is a 415 naming the accepted type', async () => {
    for (const type of ['application/json', 'text/csv']) {
      const r = await answer(await s.api('/v1/images', { method: 'POST', body: type === 'text/csv' ? 'a,b\n' : '{}', headers: { 'content-type': type } }));
      expect(r).toEqual({ status: 415, body: { error: `content-type: expected application/x-tar (an image bundle), got "${type}"` } });
    }
  });

  it('JSON import rows with the wrong type, an unknown field or a prototype key import nothing', async () => {
    const before = dumpTables(s.livery.cmdb);
    const cases: [Record<string, unknown>, string][] = [
      [{ hostname: 5 }, 'hostname: expected a string or null, got a number'],
      [{ ip: 167772161 }, 'ip: expected a string or null, got a number'],
      [{ uuid: 1 }, 'uuid: expected a string or null, got a number'],
      [{ image: 'debian' }, 'image: expected an object, got a string'],
      [{ state: 'gone' }, 'state: expected one of "discovered", "registered", "retired", got a string'],
      [{ toString: 'x' }, 'unknown field "toString"'],
      [{ hasOwnProperty: 'x' }, 'unknown field "hasOwnProperty"'],
      [{ labels: { rack: 7 } }, 'labels.rack: expected a string, got a number'],
    ];
    for (const [extra, error] of cases) {
      const r = await importJson([{ macs: ['52:54:00:50:00:09'], ...extra }]);
      expect(r, JSON.stringify(extra)).toEqual({ status: 400, body: { error: expect.stringContaining('nothing was changed'), problems: [{ line: 1, error }] } });
    }
    expect(dumpTables(s.livery.cmdb)).toEqual(before);
  });

  it('the CMDB itself refuses a string where an object belongs, and non-strings where strings belong', () => {
    const cmdb = s.livery.cmdb;
    expect(() => cmdb.machines.create({ macs: ['52:54:00:50:00:0a'], image: 'debian' as never })).toThrow('image: expected an object, got a string');
    expect(() => cmdb.machines.create({ macs: ['52:54:00:50:00:0a'], ip: 5 as never })).toThrow('ip: expected an IPv4 address as a string, got a number');
  });

  it('?label= with a backslash or a quote is parsed or refused, never a 500', async () => {
    expect((await answer(await s.api(`/v1/machines?label=${encodeURIComponent('rack=a\\b')}`))).status).toBe(400);
    expect((await answer(await s.api(`/v1/machines?label=${encodeURIComponent('ra"ck=r0')}`))).body.error).toMatch(/^querystring.label: /);
    const quoted = await answer(await s.api(`/v1/machines?label=${encodeURIComponent('rack="r0"')}`));
    expect(quoted.body.items.map((m: { hostname: string }) => m.hostname)).toEqual(['in1']);
    const badKey = await answer(await s.api(`/v1/machines?label=${encodeURIComponent('a\\b=1')}`));
    expect(badKey).toMatchObject({ status: 400 });
  });

  it('a multicast or broadcast MAC is refused, in a body and in an import', async () => {
    const multicast = await answer(await s.api('/v1/machines', { method: 'POST', json: { macs: ['01:00:5e:00:00:01'] } }));
    expect(multicast).toEqual({ status: 400, body: { error: "macs: 01:00:5e:00:00:01 is a multicast address, not a NIC's (was a digit mistyped?)", field: 'macs' } });
    const broadcast = await answer(await s.api('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:50:00:0b', 'FF-FF-FF-FF-FF-FF'] } }));
    expect(broadcast.body.error).toBe("macs: ff:ff:ff:ff:ff:ff is a broadcast address, not a NIC's (was a digit mistyped?)");
    const csv = await answer(await s.api('/v1/machines/import', { method: 'POST', body: 'mac,hostname\n53:54:00:50:00:0c,odd1\n', headers: { 'content-type': 'text/csv' } }));
    expect(csv.status).toBe(400);
    expect(csv.body.problems[0].error).toContain('53:54:00:50:00:0c is a multicast address');
  });

  it('an enum error names the allowed values', async () => {
    const r = await answer(await s.api('/v1/subnets', { method: 'POST', json: { cidr: '10.51.0.0/24', policy: 'maybe' } }));
    expect(r).toEqual({ status: 400, body: { error: 'body.policy: expected one of "ignore", "discover", "default-image", "commission", got a string' } });
    const q = await answer(await s.api('/v1/leases?state=lost'));
    expect(q.body.error).toBe('querystring.state: expected one of "offered", "bound", "released", "declined", got a string');
  });

  it('an unauthenticated request is a 401 whatever its body', async () => {
    const r = await answer(await s.api('/v1/tokens', { method: 'POST', token: null, json: { nonsense: true } }));
    expect(r).toEqual({ status: 401, body: { error: 'missing bearer token (Authorization: Bearer <token>)' } });
  });
});

interface Schema {
  type?: string;
  enum?: unknown[];
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: boolean | Schema;
  patternProperties?: Record<string, Schema>;
}
interface Operation {
  parameters?: { in: 'path' | 'query'; name: string; schema: Schema }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}

/** Strings that have broken parsers before: escapes, quotes, prefixes, refs of every kind. */
const nasty = fc.constantFrom('%', '%25', '%zz', '\\', '"', "'", '\u0000', 'id:1', 'mac:x', 'hostname:', 'name:lan', 'cidr:10.50.0.0/24', '10.50.0.0/24', '52:54:00:50:00:01', '525400500001', '1', '0', '-1', '', ' ', 'a=b', 'a="b', 'k=v,k=w', '../..', 'toString', '__proto__', 'x'.repeat(300));
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 10 }), nasty);

/** Values shaped by a schema most of the time, anything at all some of the time. */
function valueOf(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  const shaped = ((): fc.Arbitrary<unknown> => {
    if (schema.enum) return fc.constantFrom(...schema.enum);
    if (schema.anyOf) return fc.oneof(...schema.anyOf.map((m) => valueOf(m, depth)));
    switch (schema.type) {
      case 'string':
        return text;
      case 'integer':
        return fc.oneof(fc.integer(), fc.constantFrom(0, -1, 2 ** 53, 1e308));
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      case 'array':
        return fc.array(valueOf(schema.items ?? {}, depth + 1), { maxLength: 3 });
      case 'object': {
        if (depth > 3) return fc.constant({});
        const props = Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, valueOf(v, depth + 1)]));
        const extra = fc.dictionary(fc.oneof(text, fc.constantFrom('toString', 'constructor', 'valueOf')), fc.oneof(text, fc.integer()), { maxKeys: 2 });
        return fc.tuple(fc.record(props, { requiredKeys: [] }), fc.oneof(fc.constant({}), extra)).map(([a, b]) => ({ ...b, ...a }));
      }
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  })();
  return fc.oneof({ weight: 5, arbitrary: shaped }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
}

const queryText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? '');

describe('fuzzing every route of the OpenAPI document', () => {
  it('answers no 5xx to any path parameter, query string or body', async () => {
    const doc = (await (await s.api('/v1/openapi.json')).json()) as { paths: Record<string, Record<string, Operation>> };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method: method.toUpperCase(), op })));
    expect(routes.length).toBeGreaterThan(30);
    const failures: string[] = [];
    for (const { path, method, op } of routes) {
      const params = op.parameters ?? [];
      const bodySchema = op.requestBody?.content['application/json']?.schema;
      const request = fc.record({
        path: fc.tuple(...params.filter((p) => p.in === 'path').map((p) => fc.tuple(fc.constant(p.name), fc.oneof(text, valueOf(p.schema).map(queryText)), fc.boolean()))),
        query: fc.array(fc.tuple(fc.constantFrom(...params.filter((p) => p.in === 'query').map((p) => p), { in: 'query' as const, name: 'junk', schema: {} }), fc.boolean()), { maxLength: 3 }),
        body: bodySchema ? valueOf(bodySchema) : fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 })),
        type: fc.constantFrom('application/json', 'text/csv', 'application/x-tar', 'text/plain'),
      });
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          let url = path;
          // Some path values go raw (a lone '%' is a malformed URL), most URL-encoded.
          for (const [name, value, raw] of r.path) url = url.replace(`{${name}}`, raw ? String(value).replace(/[/?#]/g, '') || 'x' : encodeURIComponent(String(value)) || 'x');
          const q = new URLSearchParams();
          for (const [p, asJson] of r.query) fc.sample(valueOf(p.schema), 1).forEach((v) => q.append(p.name, asJson ? JSON.stringify(v) : queryText(v)));
          const withBody = method !== 'GET' && method !== 'HEAD' && r.body !== undefined;
          const body = withBody ? (r.type === 'application/json' ? JSON.stringify(r.body) : queryText(r.body)) : undefined;
          const abort = new AbortController();
          const res = await s.api(`${url}${q.size ? `?${q}` : ''}`, { method, body, headers: withBody ? { 'content-type': r.type } : {}, signal: abort.signal });
          // The event stream never ends: its status is all there is to check.
          abort.abort();
          if (res.status >= 500) failures.push(`${res.status} ${method} ${url}${q.size ? `?${q}` : ''} ${body ?? ''}`.slice(0, 300));
          return res.status < 500;
        }),
        { numRuns: 25, seed: 26 },
      ).catch(() => undefined);
    }
    expect(failures).toEqual([]);
    expect((await s.api('/healthz')).status).toBe(200);
  });
});
