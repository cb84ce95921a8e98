import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpTables } from '../helpers/db-snapshot.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.stop());

/** Sends a request that must be rejected with `status` and `error`, and proves the DB did not change. */
async function rejected(path: string, init: Parameters<TestServer['api']>[1], status: number, error: RegExp) {
  const before = dumpTables(s.livery.cmdb);
  const res = await s.api(path, init);
  const body = await res.json();
  expect({ status: res.status, error: body.error }).toEqual({ status, error: expect.stringMatching(error) });
  expect(dumpTables(s.livery.cmdb)).toEqual(before);
  return body;
}

describe('REST API', () => {
  it('creates a machine and normalises its MAC', async () => {
    const res = await s.api('/v1/machines', {
      method: 'POST',
      json: { macs: ['52-54-00-12-34-56'], hostname: 'node1', ip: '10.0.0.10', labels: { rack: 'r1' } },
    });
    expect(res.status).toBe(201);
    const m = await res.json();
    expect(m).toMatchObject({ macs: ['52:54:00:12:34:56'], hostname: 'node1', ip: '10.0.0.10', state: 'registered', labels: { rack: 'r1' } });
    const got = await (await s.api('/v1/machines/5254.0012.3456')).json();
    expect(got.id).toBe(m.id);
    const audit = s.livery.cmdb.audit.list({ limit: 1 })[0]!;
    expect(audit).toMatchObject({ actor: 'token:bootstrap-admin', action: 'machine.create', target: '52:54:00:12:34:56' });
  });

  it('lists with filters and pagination', async () => {
    for (let i = 0; i < 5; i++) {
      await s.api('/v1/machines', { method: 'POST', json: { macs: [`02:00:00:00:00:0${i}`], site: 'ams', labels: { rack: i < 2 ? 'r9' : 'r8' } } });
    }
    const byLabel = await (await s.api('/v1/machines?label=rack%3Dr9')).json();
    expect(byLabel.items.map((m: { macs: string[] }) => m.macs[0])).toEqual(['02:00:00:00:00:00', '02:00:00:00:00:01']);
    const p1 = await (await s.api('/v1/machines?site=ams&limit=3')).json();
    expect(p1.items).toHaveLength(3);
    const p2 = await (await s.api(`/v1/machines?site=ams&limit=3&after=${p1.next}`)).json();
    expect(p2.items).toHaveLength(2);
    expect(p2.next).toBeNull();
  });

  it('patches and retires', async () => {
    const r = await s.api('/v1/machines/node1', { method: 'PATCH', json: { site: 'fra', image: { name: 'minimal' } } });
    expect(await r.json()).toMatchObject({ site: 'fra', image: { name: 'minimal', channel: 'stable', id: null } });
    const d = await s.api('/v1/machines/02:00:00:00:00:04', { method: 'DELETE' });
    expect((await d.json()).state).toBe('retired');
  });

  it('says what was wrong and changes nothing', async () => {
    await rejected('/v1/machines', { method: 'POST', json: { macs: ['xx'] } }, 400, /macs: invalid MAC address "xx"/);
    await rejected('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:12:34:56'] } }, 409, /already belongs to machine node1/);
    await rejected('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:99:99:99'], hostname: 'node1' } }, 409, /hostname node1 is already taken/);
    await rejected('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:99:99:99'], color: 'red' } }, 400, /unknown field "color"/);
    await rejected('/v1/machines', { method: 'POST', json: { hostname: 'x' } }, 400, /macs: at least one MAC/);
    await rejected('/v1/machines', { method: 'POST', body: '{"macs": [', headers: { 'content-type': 'application/json' } }, 400, /JSON/);
    await rejected('/v1/subnets', { method: 'POST', json: { cidr: '10.0.0.0/33' } }, 400, /cidr: .* is not a CIDR block/);
    await rejected('/v1/subnets', { method: 'POST', json: { cidr: '10.0.0.0/24', pools: [{ start: '10.0.1.1', end: '10.0.1.9' }] } }, 400, /outside the usable hosts/);
    await rejected(
      '/v1/subnets',
      { method: 'POST', json: { cidr: '10.0.0.0/24', pools: [{ start: '10.0.0.5', end: '10.0.0.20' }] } },
      409,
      /pool contains 10.0.0.10, reserved for machine node1/,
    );
    await rejected('/v1/machines/ghost', { method: 'PATCH', json: { site: 'x' } }, 404, /machine ghost not found/);
  });

  it('enforces tokens and roles', async () => {
    await rejected('/v1/machines', { method: 'POST', token: null, json: { macs: ['02:00:00:00:01:01'] } }, 401, /missing bearer token/);
    await rejected('/v1/machines', { method: 'POST', token: 'lvy_000000000000_' + 'x'.repeat(43), json: { macs: ['02:00:00:00:01:01'] } }, 401, /invalid or revoked/);
    const reader = await (await s.api('/v1/tokens', { method: 'POST', json: { name: 'ro', role: 'reader' } })).json();
    expect((await s.api('/v1/machines', { token: reader.token })).status).toBe(200);
    await rejected('/v1/machines', { method: 'POST', token: reader.token, json: { macs: ['02:00:00:00:01:01'] } }, 403, /needs the operator role/);
    await rejected('/v1/tokens', { method: 'POST', token: reader.token, json: { name: 'x', role: 'admin' } }, 403, /needs the admin role/);
    const publisher = await (await s.api('/v1/tokens', { method: 'POST', json: { name: 'pub', role: 'publisher' } })).json();
    await rejected('/v1/subnets', { method: 'POST', token: publisher.token, json: { cidr: '10.9.0.0/24' } }, 403, /needs the operator role/);
    await s.api(`/v1/tokens/${reader.id}`, { method: 'DELETE' });
    expect((await s.api('/v1/machines', { token: reader.token })).status).toBe(401);
  });

  it('imports CSV idempotently, and a file with bad rows imports nothing', async () => {
    const rows = ['mac,hostname,ip,site,labels'];
    for (let i = 0; i < 200; i++) rows.push(`0a:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')},imp-${i},10.1.${i >> 8}.${(i & 255) + 1},ams,rack=r${i % 4};row=${i}`);
    const csv = rows.join('\n') + '\n';
    const post = (body: string) => s.api('/v1/machines/import', { method: 'POST', body, headers: { 'content-type': 'text/csv' } });
    expect(await (await post(csv)).json()).toEqual({ created: 200, updated: 0, unchanged: 0 });
    const before = dumpTables(s.livery.cmdb);
    expect(await (await post(csv)).json()).toEqual({ created: 0, updated: 0, unchanged: 200 });
    const after = dumpTables(s.livery.cmdb);
    expect({ ...after, audit_log: [] }).toEqual({ ...before, audit_log: [] });

    const bad = csv + '0c:00:00:00:00:01,new-1,,,\nnot-a-mac,new-2,,,\n0c:00:00:00:00:03,imp-3,,,\n0c:00:00:00:00:04,new-4,10.1.0.1,,\n';
    const body = await rejected('/v1/machines/import', { method: 'POST', body: bad, headers: { 'content-type': 'text/csv' } }, 400, /nothing was changed: 3 bad row/);
    expect(body.problems).toEqual([
      { line: 203, error: 'macs: invalid MAC address "not-a-mac"' },
      { line: 204, error: 'hostname: hostname imp-3 is already taken' },
      { line: 205, error: 'ip: 10.1.0.1 is already reserved for machine imp-0' },
    ]);
    await rejected('/v1/machines/import', { method: 'POST', body: 'mac,colour\n0c:00:00:00:00:01,red\n', headers: { 'content-type': 'text/csv' } }, 400, /1 bad row/);
    const json = await s.api('/v1/machines/import', { method: 'POST', json: [{ macs: ['0e:00:00:00:00:01'], hostname: 'j1' }] });
    expect(await json.json()).toEqual({ created: 1, updated: 0, unchanged: 0 });
  });

  it('serves health, metrics and the OpenAPI document', async () => {
    expect(await (await s.api('/healthz', { token: null })).json()).toMatchObject({ status: 'ok' });
    const metrics = await (await s.api('/metrics', { token: null })).text();
    expect(metrics).toContain('livery_http_requests_total');
    const doc = await (await s.api('/v1/openapi.json', { token: null })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toContain('/v1/machines/{ref}');
  });
});
