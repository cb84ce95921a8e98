import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveryAsync } from '../helpers/cli.js';
import { manifestFor, randomArtifacts } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('likely mistakes in a machine record: stored, and warned about', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
    s.livery.cmdb.images.insert('abcd1111-0000-4000-8000-000000000001', manifestFor('web', 'v1', randomArtifacts({ rootfs: 1024 })));
    expect((await s.api('/v1/subnets', { method: 'POST', json: { name: 'lan', cidr: '10.20.0.0/24' } })).status).toBe(201);
  });
  afterAll(() => s.stop());
  const cli = (...args: string[]) => liveryAsync(['--url', s.url, '--token', s.token, ...args]);

  it('an image name the catalog has never seen and an address in no subnet: warned on add and set, on the API and the CLI', async () => {
    const r = await s.api('/v1/machines', { method: 'POST', json: { macs: ['02:00:00:00:77:01'], hostname: 'typo', image: { name: 'wbe' }, ip: '10.30.0.5' } });
    expect(r.status).toBe(201);
    const body = (await r.json()) as { id: number; warnings?: string[] };
    expect(body.warnings).toEqual([
      'image: no image named wbe in the catalog yet; the machine boots nothing until one is published (livery image list shows the names)',
      'ip: 10.30.0.5 is in no subnet livery serves; it is reserved for nothing until a subnet contains it',
    ]);
    // explain names the likely typo rather than an empty channel.
    const e = (await (await s.api('/v1/machines/typo/explain')).json()) as { reasons: string[] };
    expect(e.reasons).toContain('no image named wbe in the catalog (a typo? livery image list shows the names)');

    const set = await cli('machine', 'set', 'typo', '--image', 'web', '--ip', '10.20.0.5');
    expect(set.code).toBe(0);
    expect(set.stderr).not.toContain('warning');
    const again = await cli('machine', 'set', 'typo', '--image', 'wbe');
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('warning: image: no image named wbe in the catalog yet');
    expect(again.stderr).not.toContain('warning: ip:');
  });

  it('a pin to an image id not in the catalog (yet: it may be on its way from another site): stored and warned; a non-id refused', async () => {
    const absent = '5c1f0e2a-9b3d-4e6f-8a7b-1c2d3e4f5a6b';
    const r = await s.api('/v1/machines', { method: 'POST', json: { macs: ['02:00:00:00:77:02'], hostname: 'early', image: { id: absent } } });
    expect(r.status).toBe(201);
    expect(((await r.json()) as { warnings?: string[] }).warnings).toEqual([
      `image: no image with id ${absent} in the catalog yet; the machine boots nothing until it is pulled (livery image pull keeps an image's id) or published here`,
    ]);
    const e = (await (await s.api('/v1/machines/early/explain')).json()) as { reasons: string[] };
    expect(e.reasons).toContain(`pinned image ${absent} is not in this catalog (livery image pull brings it from another server under the same id)`);
    const present = await cli('machine', 'set', 'early', '--image-id', 'abcd1111-0000-4000-8000-000000000001');
    expect(present.code).toBe(0);
    expect(present.stderr).not.toContain('warning');
    const typo = await s.api('/v1/machines', { method: 'POST', json: { macs: ['02:00:00:00:77:03'], image: { id: 'web-v1' } } });
    expect(typo.status).toBe(400);
    expect(((await typo.json()) as { error: string }).error).toBe('image.id: no image with id web-v1 here, and it is not an image id (a lowercase UUID v4) that a pull could bring');
  });
});
