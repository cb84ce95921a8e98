import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle, randomArtifacts, sha256 } from '../helpers/bundle.js';
import { bootEventsWritten, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let imageId: string;
const artifacts = randomArtifacts({ rootfs: 3 * 1024 * 1024 + 17 });
const rootfs = artifacts[2]!.content;
const MAC = '52:54:00:12:34:56';

beforeAll(async () => {
  server = await startTestServer();
  const res = await publishBundle(server, (await makeBundle('served', '1.0', artifacts)).tar);
  imageId = ((await res.json()) as { id: string }).id;
  await server.api('/v1/machines', {
    method: 'POST',
    body: JSON.stringify({ macs: [MAC], hostname: 'booter' }),
    headers: { 'content-type': 'application/json' },
  });
});
afterAll(async () => {
  await server?.stop();
});

const url = (file = 'rootfs.squashfs', query = '') => `${server.url}/images/${imageId}/${file}${query}`;
const get = (headers: Record<string, string> = {}, file?: string, query?: string) => fetch(url(file, query), { headers });
const bytes = async (res: Response) => Buffer.from(await res.arrayBuffer());

describe('artifact serving', () => {
  it('serves the whole file with exact length, ETag and immutable caching (no token needed)', async () => {
    const res = await get();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(rootfs.length));
    expect(res.headers.get('etag')).toBe(`"${sha256(rootfs)}"`);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await bytes(res)).equals(rootfs)).toBe(true);
  });

  it.each([
    ['first bytes', 'bytes=0-99', 0, 99],
    ['a middle slice', 'bytes=1000000-1999999', 1_000_000, 1_999_999],
    ['an open-ended range', `bytes=${rootfs.length - 10}-`, rootfs.length - 10, rootfs.length - 1],
    ['a suffix', 'bytes=-500', rootfs.length - 500, rootfs.length - 1],
    ['an end past the file', `bytes=5-${rootfs.length + 1000}`, 5, rootfs.length - 1],
  ])('Range: %s → 206 with Content-Range', async (_label, range, start, end) => {
    const res = await get({ range });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${rootfs.length}`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    expect((await bytes(res)).equals(rootfs.subarray(start, end + 1))).toBe(true);
  });

  it('an unsatisfiable Range → 416 with Content-Range: bytes */size', async () => {
    const res = await get({ range: `bytes=${rootfs.length}-` });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe(`bytes */${rootfs.length}`);
  });

  it('several ranges, or If-Range with another validator, get the whole file', async () => {
    const multi = await get({ range: 'bytes=0-1,5-6' });
    expect(multi.status).toBe(200);
    expect((await bytes(multi)).length).toBe(rootfs.length);
    const stale = await get({ range: 'bytes=0-1', 'if-range': '"0000"' });
    expect(stale.status).toBe(200);
    await stale.arrayBuffer();
  });

  it('HEAD gives the headers without a body', async () => {
    const res = await fetch(url(), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(rootfs.length));
    expect(res.headers.get('etag')).toBe(`"${sha256(rootfs)}"`);
    expect((await bytes(res)).length).toBe(0);
  });

  it('If-None-Match with the ETag → 304', async () => {
    const res = await get({ 'if-none-match': `"${sha256(rootfs)}"` });
    expect(res.status).toBe(304);
    expect((await get({ 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('unknown image or file → 404 JSON', async () => {
    for (const u of [`${server.url}/images/${imageId}/nope`, `${server.url}/images/00000000-0000-4000-8000-000000000000/vmlinuz`]) {
      const res = await fetch(u);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: string }).error).toMatch(/has no artifact/);
    }
  });

  it('serves many concurrent downloads', async () => {
    const all = await Promise.all(Array.from({ length: 50 }, () => get().then(bytes)));
    for (const b of all) expect(b.equals(rootfs)).toBe(true);
  });
});

describe('artifact boot events', () => {
  it('writes one event per fetch from byte 0 with ?mac=, none for later Range chunks', async () => {
    const events = () => server.livery.cmdb.events.forMac(MAC).filter((e) => e.type === 'artifact');
    const machineId = server.livery.cmdb.machines.find(MAC)!.id;
    const q = `?mac=${MAC.toUpperCase().replaceAll(':', '-')}`;
    await (await get({}, 'vmlinuz', q)).arrayBuffer();
    await (await get({ range: 'bytes=0-1048575' }, 'rootfs.squashfs', q)).arrayBuffer();
    await (await get({ range: 'bytes=1048576-2097151' }, 'rootfs.squashfs', q)).arrayBuffer();
    await (await get({ range: 'bytes=2097152-' }, 'rootfs.squashfs', q)).arrayBuffer();
    await (await fetch(url('initrd.img', q), { method: 'HEAD' })).arrayBuffer();
    await (await get()).arrayBuffer();
    // No wait for the writer: an artifact's bytes go out only once its event is written.
    expect(events().map((e) => ({ machineId: e.machineId, imageId: e.imageId, detail: e.detail }))).toEqual([
      { machineId, imageId, detail: { file: 'vmlinuz', role: 'kernel', bytes: 4096, range: null } },
      { machineId, imageId, detail: { file: 'rootfs.squashfs', role: 'rootfs', bytes: 1048576, range: 'bytes=0-1048575' } },
    ]);
  });

  it("credits a new MAC's kernel to the machine its script registered a moment before", async () => {
    const { cmdb } = server.livery;
    cmdb.subnets.create({ name: 'loopback', cidr: '127.0.0.0/8', pools: [], policy: 'discover' });
    const mac = '52:54:00:aa:bb:01';
    // The script's step registers the MAC on the writer thread, and is answered before that is
    // written; the kernel is asked for straight after, while the cache still has the MAC as unknown.
    const script = await fetch(`${server.url}/boot/${mac}.ipxe`);
    expect(script.status).toBe(200);
    await script.text();
    const kernel = await get({}, 'vmlinuz', `?mac=${mac}`);
    expect(kernel.status).toBe(200);
    await kernel.arrayBuffer();
    await bootEventsWritten(server.url); // a script is answered before its step is written
    const machine = cmdb.machines.find(mac);
    expect(machine?.state).toBe('discovered');
    expect(cmdb.events.forMac(mac).map((e) => [e.type, e.machineId])).toEqual([
      ['machine-discovered', machine!.id],
      ['ipxe-script', machine!.id],
      ['artifact', machine!.id],
    ]);
  });
});

describe('a blob removed behind the cache', () => {
  it('answers 404 JSON, not a broken stream (another worker deleted and collected the image)', async () => {
    const initrd = artifacts[1]!.content;
    expect((await get({}, 'initrd.img')).status).toBe(200);
    rmSync(join(server.dataDir, 'blobs', 'sha256', sha256(initrd).slice(0, 2), sha256(initrd)));
    const res = await get({ range: 'bytes=0-9' }, 'initrd.img');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toMatch(/has no artifact initrd\.img/);
  });
});
