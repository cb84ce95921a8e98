import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../helpers/server.js';

/**
 * Every enum the API takes (path, query string, body, at any depth of a body's objects), found in
 * the document itself, answered with a wrong value: a 400 naming the field and every allowed
 * value, never ajv's "must be equal to constant" once per member.
 */
interface Schema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  minimum?: number;
}
interface Operation {
  parameters?: { in: string; name: string; required?: boolean; schema: Schema }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}

/** The allowed values when a schema is an enum of two or more; else null. */
function choicesOf(s: Schema): unknown[] | null {
  if (Array.isArray(s.enum) && s.enum.length > 1) return s.enum;
  // The document writes a literal as a one-value enum.
  const single = (m: Schema) => ('const' in m ? [m.const] : m.enum?.length === 1 ? m.enum : null);
  if (s.anyOf && s.anyOf.length > 1 && s.anyOf.every(single)) return s.anyOf.flatMap((m) => single(m)!);
  return null;
}

/** A value the schema accepts: the first choice, the first branch, or a plain one of its type. */
function validValue(s: Schema): unknown {
  const choices = choicesOf(s);
  if (choices) return choices[0];
  if ('const' in s) return s.const;
  if (s.anyOf) return validValue(s.anyOf.find((m) => m.type !== 'null') ?? s.anyOf[0]!);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === 'object') return Object.fromEntries((s.required ?? []).map((k) => [k, validValue(s.properties![k]!)]));
  if (type === 'array') return [];
  if (type === 'integer' || type === 'number') return Math.max(1, s.minimum ?? 1);
  if (type === 'boolean') return true;
  return 'x';
}

/** Each enum inside a body schema: its dotted path and allowed values. */
function bodyEnums(s: Schema, path: string[] = []): { path: string[]; choices: unknown[] }[] {
  const choices = choicesOf(s);
  if (choices) return [{ path, choices }];
  return Object.entries(s.properties ?? {}).flatMap(([k, p]) => bodyEnums(p, [...path, k]));
}

function setAt(target: Record<string, unknown>, path: string[], value: unknown): void {
  let at = target;
  for (const key of path.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
  at[path.at(-1)!] = value;
}

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.stop());

describe('a wrong enum value', () => {
  it('is a 400 naming the field and every allowed value, on every route that takes one', async () => {
    const doc = (await (await s.api('/v1/openapi.json')).json()) as { paths: Record<string, Record<string, Operation>> };
    const wrong = 'not-a-choice';
    const cases: { what: string; method: string; url: string; json?: unknown; field: string; choices: unknown[] }[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const params = op.parameters ?? [];
        const fill = (bad?: string) => {
          let url = path;
          for (const p of params.filter((p) => p.in === 'path')) url = url.replace(`{${p.name}}`, encodeURIComponent(p.name === bad ? wrong : String(validValue(p.schema))));
          return url;
        };
        for (const p of params) {
          const choices = choicesOf(p.schema);
          if (!choices) continue;
          const url = p.in === 'path' ? fill(p.name) : `${fill()}?${p.name}=${wrong}`;
          const body = op.requestBody?.content['application/json']?.schema;
          cases.push({ what: `${method} ${path} ${p.in}.${p.name}`, method, url, json: body ? validValue(body) : undefined, field: `${p.in === 'path' ? 'params' : 'querystring'}.${p.name}`, choices });
        }
        const body = op.requestBody?.content['application/json']?.schema;
        for (const e of body ? bodyEnums(body) : []) {
          const json = validValue(body!) as Record<string, unknown>;
          setAt(json, e.path, wrong);
          cases.push({ what: `${method} ${path} body.${e.path.join('.')}`, method, url: fill(), json, field: ['body', ...e.path].join('.'), choices: e.choices });
        }
      }
    }
    // The enums this API has today include these; the list grows with the API.
    expect(cases.map((c) => c.what)).toEqual(
      expect.arrayContaining(['get /v1/machines query.state', 'post /v1/machines body.state', 'post /v1/subnets body.policy', 'post /v1/power body.action', 'post /v1/tokens body.role', 'get /v1/leases query.state']),
    );
    for (const c of cases) {
      const r = await s.api(c.url, { method: c.method.toUpperCase(), json: c.json });
      const answer = (await r.json()) as { error: string };
      expect(r.status, c.what).toBe(400);
      expect(answer.error, c.what).toBe(`${c.field}: expected one of ${c.choices.map((v) => JSON.stringify(v)).join(', ')}, got a string`);
    }
  }, 60_000);
});
