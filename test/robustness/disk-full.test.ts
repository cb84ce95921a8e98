import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle, randomArtifacts } from '../helpers/bundle.js';
import { NETNS_SKIP } from '../helpers/netns.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

// Mounting a tmpfs needs the same privilege as the namespace tests.
describe.skipIf(NETNS_SKIP)('disk full during a publish', () => {
  const dir = tempDir();
  const mnt = join(dir.path, 'small');
  let s: TestServer;

  beforeAll(async () => {
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', mnt]);
    s = await startTestServer({ dataDir: join(mnt, 'var') });
  });
  afterAll(async () => {
    await s?.stop();
    execFileSync('umount', ['-l', mnt]);
    dir.cleanup();
  });

  it('answers with a clear error and leaves the catalog as it was', async () => {
    const small = await makeBundle('tiny', '1');
    expect((await publishBundle(s, small.tar)).status).toBe(201);
    const blobs = () => readdirSync(join(mnt, 'var', 'blobs'), { recursive: true }).map(String).filter((f) => /[0-9a-f]{64}$|tmp\/./.test(f)).sort();
    const before = { images: await (await s.api('/v1/images')).json(), blobs: blobs() };

    const big = await makeBundle('big', '1', randomArtifacts({ kernel: 1 << 20, initrd: 1 << 20, rootfs: 20 << 20 }));
    const res = await publishBundle(s, big.tar);
    expect(res.status).toBe(507);
    expect((await res.json()).error).toMatch(/no space left/i);
    expect(await (await s.api('/v1/images')).json()).toEqual(before.images);
    expect(blobs()).toEqual(before.blobs);
    // Once there is room again, publishing works.
    const again = await makeBundle('tiny', '2');
    expect((await publishBundle(s, again.tar)).status).toBe(201);
  });
});
