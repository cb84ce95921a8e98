import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle, sha256 } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

async function publish(name: string, version: string) {
  const bundle = await makeBundle(name, version);
  const res = await publishBundle(server, bundle.tar);
  expect(res.status).toBe(201);
  return { ...bundle, id: ((await res.json()) as { id: string }).id };
}

const post = (path: string, body?: unknown) =>
  server.api(path, { method: 'POST', ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });
const promote = (id: string, channel: string) => post(`/v1/images/${id}/promote`, { channel });
const rollback = (name: string, channel: string) => post(`/v1/channels/${name}/${channel}/rollback`);
const current = (name: string, channel: string) => server.livery.cmdb.images.resolve({ name, channel, id: null })?.id ?? null;

describe('channels', () => {
  it('promote moves a channel; rollback walks back through the history; nothing left → 409', async () => {
    const a = await publish('minimal', '1');
    const b = await publish('minimal', '2');
    const c = await publish('minimal', '3');
    for (const img of [a, b, c]) expect((await promote(img.id, 'stable')).status).toBe(200);
    expect(current('minimal', 'stable')).toBe(c.id);

    const listed = (await (await server.api('/v1/channels')).json()) as { items: { name: string; channel: string; imageId: string; version: string }[] };
    expect(listed.items).toContainEqual(expect.objectContaining({ name: 'minimal', channel: 'stable', imageId: c.id, version: '3' }));

    const r1 = await rollback('minimal', 'stable');
    expect(await r1.json()).toMatchObject({ imageId: b.id, previousImageId: c.id });
    expect(current('minimal', 'stable')).toBe(b.id);
    await rollback('minimal', 'stable');
    expect(current('minimal', 'stable')).toBe(a.id);
    const none = await rollback('minimal', 'stable');
    expect(none.status).toBe(409);
    expect(((await none.json()) as { error: string }).error).toMatch(/minimal@stable has no earlier image to roll back to/);
    expect(current('minimal', 'stable')).toBe(a.id);

    // A promote after rollbacks starts a new top; rolling back returns to where we were.
    await promote(c.id, 'stable');
    await rollback('minimal', 'stable');
    expect(current('minimal', 'stable')).toBe(a.id);

    const history = (await (await server.api('/v1/channels/minimal/stable/history')).json()) as { items: { action: string; imageId: string }[] };
    expect(history.items.map((h) => [h.action, h.imageId])).toEqual([
      ['promote', a.id],
      ['promote', b.id],
      ['promote', c.id],
      ['rollback', b.id],
      ['rollback', a.id],
      ['promote', c.id],
      ['rollback', a.id],
    ]);
    const types = server.livery.cmdb.events.tail(0).map((e) => e.type);
    expect(types.filter((t) => t === 'image-promoted')).toHaveLength(4);
    expect(types.filter((t) => t === 'image-rolled-back')).toHaveLength(3);
  });

  it('channels are per image name and reject bad names', async () => {
    const x = await publish('other', '1');
    expect((await promote(x.id, 'testing')).status).toBe(200);
    expect(current('other', 'testing')).toBe(x.id);
    expect(current('other', 'stable')).toBeNull();
    expect((await promote(x.id, 'Not A Channel')).status).toBe(400);
    expect((await rollback('other', 'nosuch')).status).toBe(404);
    expect((await promote('00000000-0000-4000-8000-000000000000', 'stable')).status).toBe(404);
  });
});

describe('ImageStore.resolve (what the boot side asks)', () => {
  it('a pinned id wins; otherwise the channel, stable by default; null when nothing matches', async () => {
    const pinned = await publish('resolve', '1');
    const stable = await publish('resolve', '2');
    await promote(stable.id, 'stable');
    const images = server.livery.cmdb.images;
    expect(images.resolve({ name: 'resolve', channel: null, id: null })?.id).toBe(stable.id);
    expect(images.resolve({ name: 'resolve', channel: 'stable', id: pinned.id })?.id).toBe(pinned.id);
    expect(images.resolve({ name: 'resolve', channel: 'testing', id: null })).toBeNull();
    expect(images.resolve({ name: null, channel: null, id: null })).toBeNull();
    expect(images.resolve({ name: null, channel: null, id: '00000000-0000-4000-8000-000000000000' })).toBeNull();
    expect(images.get(stable.id).manifest.artifacts).toEqual(stable.manifest.artifacts);
  });
});

describe('delete and gc', () => {
  it('refuses to delete an image a channel or a machine pin refers to, naming them', async () => {
    const img = await publish('pinned', '1');
    await promote(img.id, 'stable');
    const byChannel = await server.api(`/v1/images/${img.id}`, { method: 'DELETE' });
    expect(byChannel.status).toBe(409);
    expect(((await byChannel.json()) as { error: string }).error).toMatch(/still in use: channel pinned@stable/);

    const other = await publish('pinned', '2');
    await promote(other.id, 'stable');
    const machine = await server.api('/v1/machines', {
      method: 'POST',
      body: JSON.stringify({ macs: ['52:54:00:00:00:01'], hostname: 'node1', image: { id: img.id } }),
      headers: { 'content-type': 'application/json' },
    });
    expect(machine.status).toBe(201);
    const byMachine = await server.api(`/v1/images/${img.id}`, { method: 'DELETE' });
    expect(byMachine.status).toBe(409);
    expect(((await byMachine.json()) as { error: string }).error).toMatch(/pinned by machine node1/);

    await server.api('/v1/machines/node1', { method: 'PATCH', body: JSON.stringify({ image: { id: null } }), headers: { 'content-type': 'application/json' } });
    const ok = await server.api(`/v1/images/${img.id}`, { method: 'DELETE' });
    expect(ok.status).toBe(200);
    expect((await server.api(`/v1/images/${img.id}`)).status).toBe(404);
    expect((await fetch(`${server.url}/images/${img.id}/vmlinuz`)).status).toBe(404);
  });

  it('gc removes unreferenced blobs and stale temp files, and keeps the rest', async () => {
    const keep = await publish('gc-keep', '1');
    const drop = await publish('gc-drop', '1');
    expect((await server.api(`/v1/images/${drop.id}`, { method: 'DELETE' })).status).toBe(200);
    const blobPath = (b: Buffer) => join(server.dataDir, 'blobs', 'sha256', sha256(b).slice(0, 2), sha256(b));
    for (const a of drop.artifacts) expect(existsSync(blobPath(a.content))).toBe(true);

    const stale = join(server.dataDir, 'blobs', 'tmp', 'stale.part');
    const fresh = join(server.dataDir, 'blobs', 'tmp', 'fresh.part');
    writeFileSync(stale, Buffer.alloc(100));
    writeFileSync(fresh, Buffer.alloc(10));
    const twoHoursAgo = (Date.now() - 2 * 3600 * 1000) / 1000;
    utimesSync(stale, twoHoursAgo, twoHoursAgo);

    const report = (await (await server.api('/v1/images/gc', { method: 'POST' })).json()) as Record<string, number>;
    const dropBytes = drop.artifacts.reduce((n, a) => n + a.content.length, 0);
    // Earlier tests in this file deleted an image too; its blobs are collected here as well.
    expect(report.blobs).toBeGreaterThanOrEqual(3);
    expect(report.bytes).toBeGreaterThanOrEqual(dropBytes);
    expect(report).toMatchObject({ tempFiles: 1, tempBytes: 100 });
    for (const a of drop.artifacts) expect(existsSync(blobPath(a.content))).toBe(false);
    for (const a of keep.artifacts) expect(existsSync(blobPath(a.content))).toBe(true);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);

    const again = (await (await server.api('/v1/images/gc', { method: 'POST' })).json()) as Record<string, number>;
    expect(again).toMatchObject({ blobs: 0, bytes: 0, tempFiles: 0 });
  });
});
