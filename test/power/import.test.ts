import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** BMCs in CSV and JSON imports: set with the machine in the same all-or-nothing transaction. */
describe('machine import with BMCs', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => s?.stop());

  it('CSV: bmc URL and bmc_password columns; the password is sealed and write-only', async () => {
    const csv = 'mac,hostname,bmc,bmc_password\n02:00:00:00:40:01,imp1,ipmi://admin@10.0.0.5:6230,s3cret\n02:00:00:00:40:02,imp2,,\n';
    const r = await s.api('/v1/machines/import', { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
    expect(await r.json()).toEqual({ created: 2, updated: 0, unchanged: 0 });
    const bmc = await (await s.api('/v1/machines/imp1/bmc')).json();
    expect(bmc).toMatchObject({ driver: 'ipmi', address: '10.0.0.5', port: 6230, username: 'admin', passwordSet: true });
    expect(JSON.stringify(bmc)).not.toContain('s3cret');
    expect((await s.api('/v1/machines/imp2/bmc')).status).toBe(404);
  });

  it('JSON: a bmc object (url or fields); a bad BMC rejects the whole import, naming the line', async () => {
    const rows = [
      { macs: ['02:00:00:00:40:03'], hostname: 'imp3', bmc: { url: 'redfish://root@10.0.0.6/redfish/v1/Systems/1', password: 'pw', verify: false } },
      { macs: ['02:00:00:00:40:04'], hostname: 'imp4', bmc: { driver: 'ipmi', address: '10.0.0.7', username: 'admin' } },
    ];
    const bad = await s.api('/v1/machines/import', { method: 'POST', json: rows });
    expect(bad.status).toBe(400);
    expect((await bad.json()).problems).toEqual([{ line: 2, error: 'bmc.password: is required for a new BMC' }]);
    expect((await s.api('/v1/machines/imp3')).status).toBe(404);
    rows[1]!.bmc = { ...rows[1]!.bmc, password: 'pw2' } as typeof rows[1]['bmc'];
    const ok = await s.api('/v1/machines/import', { method: 'POST', json: rows });
    expect(await ok.json()).toEqual({ created: 2, updated: 0, unchanged: 0 });
    expect(await (await s.api('/v1/machines/imp3/bmc')).json()).toMatchObject({ driver: 'redfish', systemPath: '/redfish/v1/Systems/1', verify: false, passwordSet: true });
  });

  it('CSV: BMC columns without a bmc URL are refused', async () => {
    const r = await s.api('/v1/machines/import', { method: 'POST', body: 'mac,bmc_password\n02:00:00:00:40:09,x\n', headers: { 'content-type': 'text/csv' } });
    expect(r.status).toBe(400);
    expect((await r.json()).problems).toEqual([{ line: 2, error: 'bmc: bmc_password, bmc_fingerprint and bmc_verify need a bmc URL in the same row' }]);
  });
});
