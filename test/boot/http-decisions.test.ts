import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb, type Cmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { CHECK_INTERVAL_MS } from '../../src/cmdb/machine-cache.js';
import { bootEventsWritten, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The HTTP boot door decides from an in-memory copy of the CMDB (MachineCache): every edit that
 * changes a decision is in the scripts served after it, at once when made by this process's API,
 * after the cache's check interval when made by another process (the CLI, another HTTP worker:
 * here a second connection to the same file); and every script served leaves its boot event in
 * the CMDB.
 */
const MAC = '52:54:00:cc:00:01';
let s: TestServer;
let operator: Cmdb;
const ids: Record<string, string> = {};

/** Past the cache's check interval: another process's edit is seen from then on. */
const checkInterval = () => new Promise((r) => setTimeout(r, CHECK_INTERVAL_MS + 1));

const script = async (mac: string) => {
  const res = await fetch(`${s.url}/boot/${mac}.ipxe`);
  expect(res.status).toBe(200);
  return res.text();
};

beforeAll(async () => {
  s = await startTestServer();
  for (const [name, version] of [['minimal', '1.0'], ['minimal', '2.0'], ['other', '1.0']] as const) {
    const { tar } = await makeBundle(name, version);
    const res = await publishBundle(s, tar, version === '1.0' ? '?channel=stable' : '');
    expect(res.status).toBe(201);
    ids[`${name}-${version}`] = ((await res.json()) as { id: string }).id;
  }
  operator = openCmdb(databasePath(s.dataDir));
  await s.api('/v1/machines', { method: 'POST', json: { macs: [MAC], hostname: 'cached1', image: { name: 'minimal' } } });
});
afterAll(async () => {
  operator?.close();
  await s.stop();
});

describe('HTTP boot decisions from the in-memory copy of the CMDB', () => {
  it('serves every decision-changing edit: from the API in the next script, from another process within the check interval', async () => {
    expect(await script(MAC)).toContain(`livery.image=${ids['minimal-1.0']}`);
    const edits: [string, () => Promise<unknown> | unknown, string][] = [
      ['promote (a channel moves, API)', () => s.api(`/v1/images/${ids['minimal-2.0']}/promote`, { method: 'POST', json: { channel: 'stable' } }), `livery.image=${ids['minimal-2.0']}`],
      ['rollback (a channel moves, another process)', () => operator.images.rollback('minimal', 'stable', 'test'), `livery.image=${ids['minimal-1.0']}`],
      ['machine kernel args (another process)', () => operator.machines.update(MAC, { kernelArgs: 'edited=1' }), 'edited=1'],
      ['machine image (API)', () => s.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { image: { name: 'other', channel: 'stable' } } }), `livery.image=${ids['other-1.0']}`],
      ['image pin (another process)', () => operator.machines.update(MAC, { image: { id: ids['minimal-2.0'] } }), `livery.image=${ids['minimal-2.0']}`],
      ['retire (another process)', () => operator.machines.retire(MAC), '\nexit'],
    ];
    for (const [what, edit, expected] of edits) {
      const res = await edit();
      if (res instanceof Response) expect(res.ok, `${what}: ${res.status}`).toBe(true);
      else await checkInterval();
      expect(await script(MAC), what).toContain(expected);
    }
  });

  it('sees a subnet created for the client’s address, and a default image published, from another process', async () => {
    const mac = '52:54:00:cc:00:02';
    expect(await script(mac)).toMatch(/unknown MAC and no subnet matches/);
    operator.subnets.create({ name: 'loopback', cidr: '127.0.0.0/8', policy: 'default-image', defaultImage: { name: 'late', channel: 'stable' } });
    await checkInterval();
    expect(await script(mac)).toMatch(/channel stable of image late points at nothing yet|no image named late/);
    const { tar } = await makeBundle('late', '1.0');
    expect((await publishBundle(s, tar, '?channel=stable')).status).toBe(201);
    expect(await script(mac)).toMatch(/livery\.image=\S+/);
    operator.subnets.remove('loopback');
  });

  it('answers scripts, artifacts and liveness while the write lock is held elsewhere; the script’s event lands once the lock is free, before any other request is answered', async () => {
    const mac = '52:54:00:cc:00:03';
    operator.machines.create({ macs: [mac], image: { name: 'minimal', channel: 'stable' } });
    await checkInterval();
    const scriptEvents = () => operator.events.forMac(mac).filter((e) => e.type === 'ipxe-script');
    const lock = s.database.holdWriteLock();
    let released = false;
    let trace: Promise<{ boots: { stages: { event: string }[] }[] }>;
    try {
      expect(await script(mac)).toContain(`livery.image=${ids['minimal-1.0']}`);
      // With that step unwritten, the routes that only hand steps over (or read none) still answer.
      const waited = (url: string) =>
        Promise.race([fetch(url).then(async (res) => `${res.status} ${(await res.arrayBuffer()).byteLength > 0}`), new Promise((r) => setTimeout(() => r('still waiting'), 5000))]);
      expect(await waited(`${s.url}/boot/${mac}.ipxe`)).toBe('200 true');
      expect(await waited(`${s.url}/images/${ids['minimal-1.0']}/vmlinuz`)).toBe('200 true');
      expect(await waited(`${s.url}/healthz`)).toBe('200 true');
      trace = s.api(`/v1/machines/${mac}/trace`).then((res) => {
        expect(released, 'the trace was answered before the script’s event was written').toBe(true);
        return res.json();
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(scriptEvents()).toHaveLength(0);
    } finally {
      released = true;
      lock.release();
    }
    expect((await trace).boots.at(-1)!.stages.map((st) => st.event)).toContain('ipxe-script');
    expect(scriptEvents()).toHaveLength(2);
  });

  it('records the boot event of every script it serves, and registers an unknown MAC once', async () => {
    const macs = Array.from({ length: 40 }, (_, i) => `52:54:00:dd:00:${i.toString(16).padStart(2, '0')}`);
    for (const mac of macs) operator.machines.create({ macs: [mac], image: { name: 'minimal', channel: 'stable' } });
    await checkInterval();
    // Concurrent fetches share the writer's transactions; the scripts do not wait for them.
    await Promise.all(macs.flatMap((mac) => [script(mac), script(mac)]));
    await bootEventsWritten(s.url);
    for (const mac of macs) {
      const events = operator.events.forMac(mac).filter((e) => e.type === 'ipxe-script');
      expect(events, mac).toHaveLength(2);
      expect(events[0]!.machineId).toBe(operator.machines.byCanonicalMac(mac)!.id);
      expect(events[0]!.detail).toMatchObject({ template: 'ipxe/boot.ipxe', action: 'boot' });
    }
    expect(operator.machines.byCanonicalMac(macs[0]!)!.lastSeenAt).not.toBeNull();

    operator.subnets.create({ name: 'discovering', cidr: '127.0.0.0/8', policy: 'discover' });
    await checkInterval();
    const unknown = '52:54:00:ee:00:01';
    await Promise.all([script(unknown), script(unknown), script(unknown)]);
    await bootEventsWritten(s.url);
    const registered = operator.machines.byCanonicalMac(unknown);
    expect(registered?.state).toBe('discovered');
    expect(operator.machines.list({}).filter((m) => m.macs.includes(unknown))).toHaveLength(1);
    const events = operator.events.forMac(unknown).filter((e) => e.type === 'ipxe-script');
    expect(events).toHaveLength(3);
    expect(events.every((e) => e.machineId === registered!.id)).toBe(true);
    operator.subnets.remove('discovering');
  });
});
