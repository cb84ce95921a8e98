/**
 * kill -9 at random points while livery is publishing an image, promoting and rolling back,
 * and importing machines; after each restart nothing is half-done: no half-published image,
 * no orphan blob after gc, channels point at real images, an import is all there or absent,
 * and SQLite's integrity check is clean.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { makeBundle, randomArtifacts } from '../helpers/bundle.js';
import { CLI } from '../helpers/cli.js';
import { kill9 as killProcess, startKillable } from '../helpers/killable.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const dataDir = join(dir.path, 'var');
let proc: ChildProcess | null = null;
let url = '';
afterAll(() => {
  proc?.kill('SIGKILL');
  dir.cleanup();
});

async function start(): Promise<void> {
  // One HTTP process: the kill must hit the process that holds every write.
  const config = join(dir.path, 'livery.yaml');
  writeFileSync(config, `dataDir: ${dataDir}\nhttp:\n  listen: 127.0.0.1:0\n  workers: 1\ntftp:\n  enabled: false\n`);
  ({ proc, url } = await startKillable([CLI, 'serve', '--config', config]));
}

async function kill9(): Promise<void> {
  await killProcess(proc!);
  proc = null;
}

const token = () => readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
const api = (path: string, init: RequestInit = {}) =>
  fetch(url + path, { ...init, headers: { authorization: `Bearer ${token()}`, ...(init.headers as Record<string, string>) } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Checks every invariant straight from the database and the blob store. */
function checkInvariants(rounds: number) {
  const cmdb = openCmdb(databasePath(dataDir));
  try {
    expect(cmdb.integrityCheck()).toBe('ok');
    const images = cmdb.images.list();
    const blobsDir = join(dataDir, 'blobs', 'sha256');
    const onDisk = new Set(existsSync(blobsDir) ? readdirSync(blobsDir, { recursive: true }).map(String).filter((f) => /[0-9a-f]{64}$/.test(f)).map((f) => f.slice(-64)) : []);
    // Every visible image has every blob on disk, with the right size.
    for (const image of images) for (const a of image.artifacts) expect(onDisk.has(a.sha256), `${image.version}/${a.name}`).toBe(true);
    for (const c of cmdb.images.channels()) expect(images.some((i) => i.id === c.imageId)).toBe(true);
    // Each import batch is wholly there or wholly absent.
    const imported: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const n = cmdb.machines.list({ labels: { batch: `crash-${r}` }, limit: 10_000 }).length;
      expect([0, 2000], `batch ${r}`).toContain(n);
      imported.push(n);
    }
    return { images: images.length, imported, onDisk };
  } finally {
    cmdb.close();
  }
}

describe('crash consistency under kill -9', () => {
  it('survives 21 kill points across publish, promote/rollback and bulk import', async () => {
    await start();
    // A baseline image on stable so promote and rollback have something to walk.
    const base = await makeBundle('crash', 'base');
    expect((await api('/v1/images?channel=stable', { method: 'POST', body: base.tar, headers: { 'content-type': 'application/x-tar' } })).status).toBe(201);
    await kill9();
    const hex = (n: number) => n.toString(16).padStart(2, '0');
    const csv = (round: number) =>
      ['mac,hostname,labels', ...Array.from({ length: 2000 }, (_, i) => `0e:00:00:${hex(round)}:${hex(i >> 8)}:${hex(i & 255)},crash-${round}-${i},batch=crash-${round}`)].join('\n');
    let kills = 0;
    const cut = { publishes: 0, imports: 0 };
    for (let round = 0; round < 7; round++) {
      // (b) a publish of a 24 MB bundle, cut at a random point.
      const big = await makeBundle('crash', `v${round}`, randomArtifacts({ kernel: 4 << 20, initrd: 4 << 20, rootfs: 16 << 20 }));
      const imagesBefore = checkInvariants(round).images;
      await start();
      const publishing = api('/v1/images', { method: 'POST', body: big.tar, headers: { 'content-type': 'application/x-tar' } }).catch(() => null);
      await sleep(Math.random() * 400);
      await kill9();
      kills++;
      await publishing;
      if (checkInvariants(round).images === imagesBefore) cut.publishes++;
      await start();

      // (c) promote and rollback in a loop, cut at a random point.
      const ids = ((await (await api('/v1/images')).json()) as { items?: { id: string }[] } | { id: string }[]);
      const list = Array.isArray(ids) ? ids : (ids.items ?? []);
      const churn = (async () => {
        for (let i = 0; i < 50; i++) {
          const id = list[i % list.length]!.id;
          await api(`/v1/images/${id}/promote`, { method: 'POST', body: JSON.stringify({ channel: 'stable' }), headers: { 'content-type': 'application/json' } }).catch(() => null);
          await api('/v1/channels/crash/stable/rollback', { method: 'POST' }).catch(() => null);
        }
      })();
      await sleep(Math.random() * 300);
      await kill9();
      kills++;
      await churn;
      checkInvariants(round);
      await start();

      // (d) a 2,000-row import, cut at a random point: all of it or none of it.
      const importing = api('/v1/machines/import', { method: 'POST', body: csv(round), headers: { 'content-type': 'text/csv' } }).catch(() => null);
      await sleep(Math.random() * 300);
      await kill9();
      kills++;
      await importing;
      if (checkInvariants(round + 1).imported[round] === 0) cut.imports++;
    }
    expect(kills).toBe(21);
    console.log(`kill points: ${kills}; publishes cut before they landed: ${cut.publishes}/7; imports cut: ${cut.imports}/7`);
    await start();
    // gc leaves exactly the blobs visible images use: no orphan from any cut-off publish.
    expect((await api('/v1/images/gc', { method: 'POST' })).status).toBe(200);
    await kill9();
    const { onDisk } = checkInvariants(7);
    const cmdb = openCmdb(databasePath(dataDir));
    try {
      expect(onDisk).toEqual(cmdb.images.blobsInUse());
      expect(readdirSync(join(dataDir, 'blobs', 'tmp')).length).toBe(0);
    } finally {
      cmdb.close();
    }
  }, 600_000);
});
