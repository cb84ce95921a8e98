/**
 * kill -9 of a real livery process (test/helpers/rollout-serve.mjs, needs make build: `livery serve` whose BMCs
 * record every power cycle in a ledger) at many points of a rollout: while a canary's cycle
 * is asked for but not answered, mid-wave, while soaking. After every restart the rollout
 * carries on from the CMDB, and at the end every machine was power-cycled exactly once and
 * runs the new image healthy.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { makeBundle } from '../helpers/bundle.js';
import { servedImage } from '../helpers/fake-fleet.js';
import { kill9 as killProcess, startKillable } from '../helpers/killable.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const dataDir = join(dir.path, 'var');
const ledger = join(dir.path, 'cycles');
const SERVE = resolve('test/helpers/rollout-serve.mjs');
let proc: ChildProcess | null = null;
let url = '';
let stopped = false;

afterAll(() => {
  stopped = true;
  proc?.kill('SIGKILL');
  dir.cleanup();
});

async function start(): Promise<void> {
  const config = join(dir.path, 'livery.yaml');
  writeFileSync(config, `dataDir: ${dataDir}\nlog:\n  level: silent\nhttp:\n  listen: 127.0.0.1:0\n  workers: 1\n  metadataRequiresOwnAddress: false\ntftp:\n  enabled: false\n`);
  ({ proc, url } = await startKillable([SERVE, config, ledger]));
}

async function kill9(): Promise<void> {
  await killProcess(proc!);
  proc = null;
  url = '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cycles = () => (existsSync(ledger) ? readFileSync(ledger, 'utf8').trim().split('\n').filter(Boolean) : []);
const token = () => readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
async function api(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>), authorization: `Bearer ${token()}` };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  return fetch(url + path, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
}

/** A machine's boot, retried while livery is down: its boot script (the image livery decides), phone-home, health. */
async function bootMachine(mac: string): Promise<void> {
  for (;;) {
    if (stopped) return;
    try {
      if (!url) throw new Error('livery is down');
      const imageId = await servedImage(url, mac);
      const post = (what: string, body: unknown) => fetch(`${url}/v1/machines/${mac}/${what}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if ((await post('booted', { imageId })).status !== 204) throw new Error('booted refused');
      if ((await post('health', { imageId, status: 'healthy', failing: [] })).status !== 204) throw new Error('health refused');
      return;
    } catch {
      await sleep(50);
    }
  }
}

/** Boots every machine the ledger shows cycled, 150 ms after its cycle, as real machines would. */
function playMachines(): () => Promise<void> {
  let seen = 0;
  const boots: Promise<void>[] = [];
  const timer = setInterval(() => {
    const all = cycles();
    for (; seen < all.length; seen++) {
      const mac = all[seen]!;
      boots.push(sleep(150).then(() => bootMachine(mac)));
    }
  }, 20);
  return async () => {
    clearInterval(timer);
    await Promise.all(boots);
  };
}

function dbState(id: number): { state: string; waves: string[] } {
  const cmdb = openCmdb(databasePath(dataDir));
  try {
    const r = cmdb.rollouts.get(id);
    return { state: r.state, waves: cmdb.rollouts.waves(id).map((w) => w.state) };
  } finally {
    cmdb.close();
  }
}

describe('rollout crash-resume under kill -9', () => {
  it('resumes after every kill without cycling a machine twice or skipping one', async () => {
    await start();
    const macs = Array.from({ length: 8 }, (_, i) => `52:54:00:20:00:0${i}`);
    const publish = async (version: string, query = '') => {
      const { tar } = await makeBundle('crash', version);
      const res = await api(`/v1/images${query}`, { method: 'POST', body: new Uint8Array(tar), headers: { 'content-type': 'application/x-tar' } });
      expect(res.status).toBe(201);
      return ((await res.json()) as { id: string }).id;
    };
    await publish('v1', '?channel=stable');
    const v2 = await publish('v2');
    for (const [i, mac] of macs.entries()) {
      const labels = { role: 'crash', rack: `r${i % 3}`, ...(i === 5 ? { canary: 'true' } : {}) };
      expect((await api('/v1/machines', { method: 'POST', json: { macs: [mac], hostname: `c${i}`, labels, image: { name: 'crash', channel: 'stable' } } })).status).toBe(201);
    }
    const stopMachines = playMachines();
    const res = await api('/v1/rollouts', { method: 'POST', json: { image: v2, selector: 'role=crash', waves: '1,50%,100%', maxParallel: 2, soak: '3s', bootTimeout: '20s', channel: 'stable' } });
    expect(res.status).toBe(201);
    const id = ((await res.json()) as { id: number }).id;

    const kills: string[] = [];
    const t0 = Date.now();
    const killAt = async (label: string) => {
      await kill9();
      kills.push(label);
      await start();
      console.log(`kill -9 ${kills.length} (${label}) at ${((Date.now() - t0) / 1000).toFixed(1)} s: restarted`);
    };
    // 1: the canary's cycle asked for, the BMC not yet answered (it answers after 300 ms).
    while (cycles().length < 1) await sleep(5);
    await killAt('canary cycle unanswered');
    // 2-6: at each further cycle, at varying delays into it.
    for (let n = 2; n <= 6; n++) {
      while (cycles().length < n) await sleep(5);
      await sleep((n * 97) % 400);
      await killAt(`after cycle ${n}`);
    }
    // 7: while the last wave soaks.
    for (let i = 0; ; i++) {
      const s = dbState(id);
      if (s.waves[2] === 'soaking') break;
      if (s.state !== 'running' || i > 2000) throw new Error(`expected the last wave to soak: ${JSON.stringify(s)}`);
      await sleep(10);
    }
    await killAt('last wave soaking');

    for (let i = 0; dbState(id).state === 'running'; i++) {
      if (i > 3000) throw new Error(`rollout did not finish: ${JSON.stringify(dbState(id))}`);
      await sleep(20);
    }
    await stopMachines();
    expect(kills).toHaveLength(7);
    expect(dbState(id)).toEqual({ state: 'succeeded', waves: ['passed', 'passed', 'passed'] });
    const byMac = new Map<string, number>();
    for (const mac of cycles()) byMac.set(mac, (byMac.get(mac) ?? 0) + 1);
    expect(Object.fromEntries(byMac)).toEqual(Object.fromEntries(macs.map((m) => [m, 1])));
    expect(cycles()[0]).toBe(macs[5]);
    const cmdb = openCmdb(databasePath(dataDir));
    try {
      expect(cmdb.integrityCheck()).toBe('ok');
      expect(cmdb.rollouts.machines(id).map((m) => m.state)).toEqual(Array(8).fill('healthy'));
      expect(cmdb.images.channels().find((c) => c.name === 'crash')!.imageId).toBe(v2);
    } finally {
      cmdb.close();
    }
  }, 300_000);
});
