import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { execRaw } from '../helpers/db-snapshot.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('/metrics shows the fleet', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.stop());

  const metric = (text: string, line: string) => {
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    return found === undefined ? undefined : Number(found.slice(line.length + 1));
  };

  it('counts machines by state, leases and pool use by subnet, and the catalog', async () => {
    expect((await s.api('/v1/subnets', { method: 'POST', json: { name: 'rack1', cidr: '10.9.0.0/24', gateway: '10.9.0.1', pools: [{ start: '10.9.0.100', end: '10.9.0.109' }] } })).status).toBe(201);
    for (const [i, state] of ['registered', 'registered', 'retired'].entries()) {
      expect((await s.api('/v1/machines', { method: 'POST', json: { macs: [`02:00:00:00:f0:0${i}`], state } })).status).toBe(201);
    }
    const subnetId = s.livery.cmdb.subnets.get('rack1').id;
    const lease = { run: (...args: unknown[]) => execRaw(s.livery.cmdb, 'INSERT INTO leases (ip, mac, subnet_id, state, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, 0)', ...args) };
    const ip = (last: number) => (10 << 24) + (9 << 16) + last;
    lease.run(ip(100), '02:00:00:00:f0:00', subnetId, 'bound', Date.now() + 3_600_000);
    lease.run(ip(101), '02:00:00:00:f0:01', subnetId, 'offered', Date.now() + 60_000);
    lease.run(ip(102), '02:00:00:00:f0:02', subnetId, 'bound', Date.now() - 1000);
    const bundle = await makeBundle('metrics', 'v1');
    expect((await publishBundle(s, bundle.tar)).status).toBe(201);

    await new Promise((r) => setTimeout(r, 1100));
    const text = await (await s.api('/metrics', { token: null })).text();
    expect(metric(text, 'livery_machines{state="registered"}')).toBe(2);
    expect(metric(text, 'livery_machines{state="retired"}')).toBe(1);
    expect(metric(text, 'livery_leases{subnet="rack1",state="bound"}')).toBe(2);
    expect(metric(text, 'livery_leases{subnet="rack1",state="offered"}')).toBe(1);
    expect(metric(text, 'livery_pool_addresses{subnet="rack1"}')).toBe(10);
    expect(metric(text, 'livery_pool_addresses_leased{subnet="rack1"}')).toBe(2);
    expect(metric(text, 'livery_catalog_images')).toBe(1);
    expect(metric(text, 'livery_catalog_bytes')).toBe(bundle.artifacts.reduce((n, a) => n + a.content.length, 0));
    expect(text).toMatch(/^livery_build_info\{version="\d+\.\d+\.\d+",node="v\d+[^"]*"\} 1$/m);
  });
});
