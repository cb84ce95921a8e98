import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveryAsync } from '../helpers/cli.js';
import { manifestFor, randomArtifacts } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const A = 'abcd1111-0000-4000-8000-000000000001';
const B = 'abcd2222-0000-4000-8000-000000000002';

describe('an image named by id prefix, NAME@CHANNEL or NAME:VERSION', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
    // Ids chosen to share a prefix; the catalog's own ids are random UUIDs.
    s.livery.cmdb.images.insert(A, manifestFor('web', 'v1', randomArtifacts({ rootfs: 1024 })));
    s.livery.cmdb.images.insert(B, manifestFor('web', 'v2', randomArtifacts({ rootfs: 1024 })));
    expect((await s.api(`/v1/images/${A}/promote`, { method: 'POST', json: { channel: 'stable' } })).status).toBe(200);
  });
  afterAll(() => s.stop());

  const idOf = async (ref: string) => {
    const r = await s.api(`/v1/images/${encodeURIComponent(ref)}`);
    return { status: r.status, body: (await r.json()) as { id?: string; error?: string } };
  };

  it('resolves each form to the one image it names', async () => {
    expect((await idOf(A)).body.id).toBe(A);
    expect((await idOf('abcd1')).body.id).toBe(A);
    expect((await idOf('abcd2222')).body.id).toBe(B);
    expect((await idOf('web@stable')).body.id).toBe(A);
    expect((await idOf('web:v2')).body.id).toBe(B);
  });

  it('refuses a prefix shared by two images, naming both, and says which forms exist', async () => {
    const shared = await idOf('abcd');
    expect(shared.status).toBe(409);
    expect(shared.body.error).toContain(`${A} web:v1`);
    expect(shared.body.error).toContain(`${B} web:v2`);
    expect((await idOf('web@beta')).status).toBe(404);
    expect((await idOf('web:v9')).status).toBe(404);
    const bad = await idOf('web');
    expect(bad.status).toBe(404);
    expect(bad.body.error).toMatch(/^image web not found: give an image id .*NAME@CHANNEL or NAME:VERSION$/);
  });

  it('the CLI takes the short forms for show, promote and pin', async () => {
    const env = { LIVERY_URL: s.url, LIVERY_TOKEN: s.token };
    expect((await s.api('/v1/machines', { method: 'POST', json: { macs: ['02:00:00:00:ee:01'], hostname: 'pinned1' } })).status).toBe(201);
    const pin = await liveryAsync(['image', 'pin', 'pinned1', 'abcd2', '--json'], env);
    expect(pin.code, pin.stderr).toBe(0);
    expect((JSON.parse(pin.stdout) as { image: { id: string } }).image.id).toBe(B);
    const promote = await liveryAsync(['image', 'promote', 'web:v2', 'stable'], env);
    expect(promote.code, promote.stderr).toBe(0);
    expect((await idOf('web@stable')).body.id).toBe(B);
    const ambiguous = await liveryAsync(['image', 'show', 'abcd'], env);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain('is the start of several image ids');
  });
});
