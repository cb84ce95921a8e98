import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveryAsync } from '../helpers/cli.js';
import { dumpTables, execRaw } from '../helpers/db-snapshot.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.stop());

const json = async (res: Response) => ({ status: res.status, body: await res.json() });
const create = async (path: string, body: unknown) => json(await s.api(path, { method: 'POST', json: body }));

/** Writes a row as an older livery (before the naming rules) could have left it. */
const legacy = (sql: string, ...args: unknown[]) => execRaw(s.livery.cmdb, sql, ...args);

describe('names that read as another kind of reference are refused', () => {
  for (const hostname of ['525400abcd01', '5254.00ab.cd01', '52-54-00-ab-cd-01', '12345']) {
    it(`hostname ${hostname}`, async () => {
      const r = await create('/v1/machines', { macs: ['02:00:00:0f:00:01'], hostname });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(/^hostname: .* reads as (a MAC|an id), so a reference to it would be ambiguous/);
    });
  }

  it('on update and import too', async () => {
    expect((await create('/v1/machines', { macs: ['02:00:00:0f:00:02'], hostname: 'plain' })).status).toBe(201);
    const patch = await json(await s.api('/v1/machines/plain', { method: 'PATCH', json: { hostname: 'aabbccddeeff' } }));
    expect(patch).toMatchObject({ status: 400, body: { field: 'hostname' } });
    const imp = await s.api('/v1/machines/import', { method: 'POST', body: 'mac,hostname\n02:00:00:0f:00:03,77\n', headers: { 'content-type': 'text/csv' } });
    expect((await imp.json()).problems).toEqual([{ line: 2, error: expect.stringMatching(/^hostname: "77" reads as an id/) }]);
  });

  it('subnet names that read as a CIDR (other than its own) or an id', async () => {
    expect((await create('/v1/subnets', { cidr: '10.30.0.0/24', name: '10.31.0.0/24' })).body.error).toMatch(/^name: "10.31.0.0\/24" reads as a CIDR/);
    expect((await create('/v1/subnets', { cidr: '10.30.0.0/24', name: '99' })).body.error).toMatch(/^name: "99" reads as an id/);
    // The default name is the subnet's own CIDR, and it follows the CIDR when that changes.
    const own = await create('/v1/subnets', { cidr: '10.30.0.0/24' });
    expect(own).toMatchObject({ status: 201, body: { name: '10.30.0.0/24' } });
    const moved = await json(await s.api('/v1/subnets/10.30.0.0%2F24', { method: 'PATCH', json: { cidr: '10.32.0.0/24' } }));
    expect(moved.body).toMatchObject({ name: '10.32.0.0/24', cidr: '10.32.0.0/24' });
  });
});

describe('a bare ref two records answer to is refused, typed refs pick one', () => {
  it('DELETE ?purge=true on a hostname spelled like another machine’s MAC purges nothing', async () => {
    const owner = (await create('/v1/machines', { macs: ['52:54:00:ab:cd:01'], hostname: 'mac-owner' })).body;
    const named = (await create('/v1/machines', { macs: ['02:00:00:0f:01:01'], hostname: 'to-rename' })).body;
    legacy('UPDATE machines SET hostname = ? WHERE id = ?', '525400abcd01', named.id);
    const before = dumpTables(s.livery.cmdb);
    const r = await json(await s.api('/v1/machines/525400abcd01?purge=true', { method: 'DELETE' }));
    expect(r.status).toBe(409);
    expect(r.body.error).toContain(`the mac of machine ${owner.id} (mac-owner)`);
    expect(r.body.error).toContain(`the hostname of machine ${named.id} (525400abcd01)`);
    expect(r.body.error).toContain('mac:525400abcd01 or hostname:525400abcd01');
    expect(dumpTables(s.livery.cmdb)).toEqual(before);
    for (const verb of ['GET', 'PATCH'] as const) {
      const res = await s.api('/v1/machines/525400abcd01', { method: verb, ...(verb === 'PATCH' ? { json: { site: 'x' } } : {}) });
      expect(res.status).toBe(409);
    }
    expect((await s.api('/v1/machines/525400abcd01/trace')).status).toBe(409);
    expect((await s.api('/v1/machines/525400abcd01/explain')).status).toBe(409);

    const purged = await json(await s.api('/v1/machines/hostname:525400abcd01?purge=true', { method: 'DELETE' }));
    expect(purged).toMatchObject({ status: 200, body: { id: named.id } });
    expect((await json(await s.api('/v1/machines/525400abcd01'))).body.id).toBe(owner.id);
    expect((await json(await s.api('/v1/machines/mac:5254.00ab.cd01'))).body.id).toBe(owner.id);
    // The CLI passes refs through as given, prefixes and all.
    const env = { LIVERY_URL: s.url, LIVERY_TOKEN: s.token };
    expect(JSON.parse((await liveryAsync(['machine', 'show', 'mac:525400abcd01', '--json'], env)).stdout).id).toBe(owner.id);
    const again = (await create('/v1/machines', { macs: ['02:00:00:0f:01:02'], hostname: 'renamed-again' })).body;
    legacy('UPDATE machines SET hostname = ? WHERE id = ?', '525400abcd01', again.id);
    const refused = await liveryAsync(['machine', 'rm', '--purge', '525400abcd01'], env);
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('409 ref: "525400abcd01" is ambiguous') });
    expect(s.livery.cmdb.machines.find(again.id)).not.toBeNull();
  });

  it('an all-digit hostname is reachable by hostname:, its number by id:', async () => {
    const a = (await create('/v1/machines', { macs: ['02:00:00:0f:02:01'], hostname: 'digits' })).body;
    const b = (await create('/v1/machines', { macs: ['02:00:00:0f:02:02'] })).body;
    legacy('UPDATE machines SET hostname = ? WHERE id = ?', String(b.id), a.id);
    expect((await s.api(`/v1/machines/${b.id}`)).status).toBe(409);
    expect((await json(await s.api(`/v1/machines/hostname:${b.id}`))).body.id).toBe(a.id);
    expect((await json(await s.api(`/v1/machines/id:${b.id}`))).body.id).toBe(b.id);
    // A ref that only one reading matches is not ambiguous.
    expect((await json(await s.api(`/v1/machines/${a.id}`))).body.id).toBe(a.id);
  });

  it('a subnet named like another subnet’s CIDR does not shadow it', async () => {
    const real = (await create('/v1/subnets', { cidr: '10.40.0.0/24', name: 'real' })).body;
    const shadow = (await create('/v1/subnets', { cidr: '10.41.0.0/24', name: 'shadow' })).body;
    legacy('UPDATE subnets SET name = ? WHERE id = ?', '10.40.0.0/24', shadow.id);
    const before = dumpTables(s.livery.cmdb);
    const get = await json(await s.api('/v1/subnets/10.40.0.0%2F24'));
    expect(get.status).toBe(409);
    expect(get.body.error).toContain('name:10.40.0.0/24 or cidr:10.40.0.0/24');
    expect((await s.api('/v1/subnets/10.40.0.0%2F24', { method: 'DELETE' })).status).toBe(409);
    expect((await s.api('/v1/leases?subnet=10.40.0.0%2F24')).status).toBe(409);
    expect((await s.api('/v1/machines', { method: 'POST', json: { macs: ['02:00:00:0f:03:01'], subnet: '10.40.0.0/24' } })).status).toBe(409);
    expect(dumpTables(s.livery.cmdb)).toEqual(before);
    expect((await json(await s.api('/v1/subnets/cidr:10.40.0.0%2F24'))).body.id).toBe(real.id);
    expect((await json(await s.api('/v1/subnets/name:10.40.0.0%2F24'))).body.id).toBe(shadow.id);
    expect((await json(await s.api(`/v1/subnets/id:${real.id}`))).body.name).toBe('real');
  });

  it('a typed ref that cannot be read as its type, or an unknown prefix, is a 400', async () => {
    expect(await json(await s.api('/v1/machines/mac:zz'))).toMatchObject({ status: 400, body: { error: 'ref: "zz" is not a mac' } });
    expect(await json(await s.api('/v1/machines/colour:red'))).toMatchObject({ status: 400, body: { error: expect.stringContaining('use one of mac:, id:, hostname:') } });
    expect((await s.api('/v1/subnets/hostname:x')).status).toBe(400);
    expect(await json(await s.api('/v1/machines/hostname:52:54:00:ab:cd:01'))).toMatchObject({ status: 400, body: { error: 'ref: "52:54:00:ab:cd:01" is not a hostname' } });
    expect((await s.api('/v1/subnets/%25')).status).toBe(404);
  });
});
