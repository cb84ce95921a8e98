/**
 * Rollouts end to end inside one real livery (HTTP on loopback, real SQLite): simulated
 * machines boot through livery's own boot decision and report health over HTTP (see
 * FakeFleet); the engine's every step is read back from the API and the event log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { execFile } from 'node:child_process';
import { CLI } from '../helpers/cli.js';
import { FakeFleet, type Behaviour } from '../helpers/fake-fleet.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
const images: Record<string, string> = {};
const behaviourOf: Record<string, Behaviour> = {};
const fleet = new FakeFleet(
  () => server.url,
  (imageId) => behaviourOf[imageId] ?? 'healthy',
);
const mac = (i: number) => `52:54:00:10:00:${i.toString(16).padStart(2, '0')}`;

interface Detail {
  id: number;
  state: string;
  reason: string | null;
  waves: { wave: number; state: string; reason: string | null; machines: { hostname: string; mac: string; state: string; phase: string; cycles: number; detail: Record<string, unknown> }[] }[];
}

async function publish(version: string, behaviour: Behaviour): Promise<string> {
  const health = { timeoutSeconds: 30, checks: [{ kind: 'command' as const, value: 'test -e /dev/kvm' }] };
  const res = await publishBundle(server, (await makeBundle('web', version, undefined, { health })).tar, version === 'v1' ? '?channel=stable' : '');
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { id: string }).id;
  behaviourOf[id] = behaviour;
  return (images[version] = id);
}

async function waitFor(id: number, states: string[], timeoutMs = 20_000): Promise<Detail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = (await (await server.api(`/v1/rollouts/${id}`)).json()) as Detail;
    if (states.includes(d.state)) return d;
    if (Date.now() > deadline) throw new Error(`rollout ${id} still ${d.state}: ${JSON.stringify(d, null, 1)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function start(body: Record<string, unknown>): Promise<Detail> {
  const res = await server.api('/v1/rollouts', { method: 'POST', json: { selector: 'role=web', soak: '200ms', bootTimeout: '5s', ...body } });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as Detail;
}

/** The built CLI, run without blocking: the server answering it lives in this process. */
function livery(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) =>
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

const cyclesOf = (m: string) => fleet.cycles.filter((c) => c.mac === m).length;
const imageOf = async (m: string) => ((await (await server.api(`/v1/metadata/${m}`, { token: null })).json()) as { image: { id: string } }).image.id;

beforeAll(async () => {
  server = await startTestServer({ http: { listen: '127.0.0.1:0', metadataRequiresOwnAddress: false } }, { power: fleet, rolloutTickMs: 40 });
  await publish('v1', 'healthy');
  // Six machines following web@stable: one canary, spread over two racks.
  for (let i = 1; i <= 6; i++) {
    const labels = { role: 'web', rack: i % 2 ? 'r1' : 'r2', ...(i === 4 ? { canary: 'true' } : {}) };
    const res = await server.api('/v1/machines', { method: 'POST', json: { macs: [mac(i)], hostname: `web${i}`, labels, image: { name: 'web', channel: 'stable' } } });
    expect(res.status).toBe(201);
  }
  for (let i = 1; i <= 6; i++) await fleet.boot(mac(i));
});
afterAll(async () => {
  await fleet.settle();
  await server.stop();
});

describe('rollout engine', () => {
  it('rolls an image out in waves, canary first, within max-parallel, and moves the channel at the end', async () => {
    const v2 = await publish('v2', 'healthy');
    const started = await start({ image: v2, waves: '1,50%,100%', maxParallel: 2, channel: 'stable' });
    expect(started.waves.map((w) => w.machines.length)).toEqual([1, 2, 3]);
    expect(started.waves[0]!.machines[0]!.hostname).toBe('web4');
    const done = await waitFor(started.id, ['succeeded', 'failed']);
    await fleet.settle();
    expect(done.state).toBe('succeeded');
    expect(fleet.cycles[0]!.mac).toBe(mac(4));
    for (let i = 1; i <= 6; i++) expect(cyclesOf(mac(i)), `web${i}`).toBe(1);
    expect(fleet.peak).toBe(2);
    expect(done.waves.every((w) => w.state === 'passed')).toBe(true);
    expect(done.waves.flatMap((w) => w.machines.map((m) => m.state))).toEqual(Array(6).fill('healthy'));
    const channels = (await (await server.api('/v1/channels')).json()) as { name: string; channel: string; imageId: string }[] | { items: { name: string; channel: string; imageId: string }[] };
    const list = Array.isArray(channels) ? channels : channels.items;
    expect(list.find((c) => c.name === 'web' && c.channel === 'stable')!.imageId).toBe(v2);
    // The machines follow the channel again (no pin left), and it gives them v2.
    const machine = (await (await server.api(`/v1/machines/${mac(1)}`)).json()) as { image: { id: string | null; name: string; channel: string } };
    expect(machine.image).toEqual({ id: null, name: 'web', channel: 'stable' });
    for (let i = 1; i <= 6; i++) expect(await imageOf(mac(i))).toBe(v2);
  });

  it('halts on an unhealthy canary, cycles it back to its previous image, never touches later waves', async () => {
    fleet.cycles.length = 0;
    const v3 = await publish('v3', 'unhealthy');
    const started = await start({ image: v3, waves: '1,100%', maxParallel: 3 });
    const done = await waitFor(started.id, ['failed', 'succeeded', 'rolled-back']);
    await fleet.settle();
    expect(done.state).toBe('failed');
    expect(fleet.cycles.map((c) => c.mac)).toEqual([mac(4), mac(4)]);
    const [canaryWave, rest] = done.waves;
    expect(canaryWave!.state).toBe('failed');
    expect(canaryWave!.reason).toContain('web4: command test -e /dev/kvm');
    expect(canaryWave!.reason).toContain('no /dev/kvm on this host');
    expect(canaryWave!.machines[0]).toMatchObject({ hostname: 'web4', phase: 'back', state: 'healthy', cycles: 1 });
    expect(rest!.state).toBe('pending');
    expect(rest!.machines.every((m) => m.state === 'pending')).toBe(true);
    expect(await imageOf(mac(4))).toBe(images.v2);
    // Every transition went over the event bus.
    const events = server.livery.cmdb.events.tail(0, 100_000).filter((e) => e.type.startsWith('rollout') && e.detail.rollout === started.id);
    expect(events.map((e) => `${e.type}:${e.detail.state}`)).toEqual(
      expect.arrayContaining(['rollout:running', 'rollout-wave:running', 'rollout-machine:cycling', 'rollout-machine:booting', 'rollout-machine:failed', 'rollout-wave:failed', 'rollout:rolling-back', 'rollout-machine:healthy', 'rollout:failed']),
    );
  });

  it('lists machines without a BMC as waiting for a reboot and counts them when they come back', async () => {
    fleet.cycles.length = 0;
    await server.api(`/v1/machines/${mac(2)}`, { method: 'PATCH', json: { labels: { role: 'web', rack: 'r2', bmc: 'none' } } });
    const v4 = await publish('v4', 'healthy');
    const started = await start({ image: v4, selector: 'role=web,rack=r2', waves: '100%' });
    let d: Detail;
    for (;;) {
      d = (await (await server.api(`/v1/rollouts/${started.id}`)).json()) as Detail;
      const web2 = d.waves[0]!.machines.find((m) => m.hostname === 'web2')!;
      if (web2.state === 'waiting-reboot' && d.waves[0]!.machines.filter((m) => m.hostname !== 'web2').every((m) => m.state === 'healthy')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(d.state).toBe('running');
    expect(await fleet.boot(mac(2))).toBe(v4);
    const done = await waitFor(started.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(cyclesOf(mac(2))).toBe(0);
    await server.api(`/v1/machines/${mac(2)}`, { method: 'PATCH', json: { labels: { role: 'web', rack: 'r2' } } });
  });

  it('counts a BMC error as a failed machine, with the BMC named, within the failure budget', async () => {
    fleet.cycles.length = 0;
    await server.api(`/v1/machines/${mac(6)}`, { method: 'PATCH', json: { labels: { role: 'web', rack: 'r2', bmc: 'broken' } } });
    const v5 = await publish('v5', 'healthy');
    const started = await start({ image: v5, selector: 'rack=r2', waves: '100%', maxFailures: '1' });
    const done = await waitFor(started.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    const web6 = done.waves[0]!.machines.find((m) => m.hostname === 'web6')!;
    expect(web6.state).toBe('failed');
    expect(web6.detail.reason).toBe(`power cycle failed: BMC ipmi://10.0.0.9 of ${mac(6)}: RAKP 2 HMAC is invalid (wrong password?)`);
  });

  it('pause holds back power cycles until resume; rollback sends every changed machine back and moves the channel back', async () => {
    fleet.cycles.length = 0;
    const v6 = await publish('v6', 'healthy');
    const started = await start({ image: v6, selector: 'rack=r1', waves: '1,100%', channel: 'stable', maxParallel: 1 });
    expect((await server.api(`/v1/rollouts/${started.id}/pause`, { method: 'POST' })).status).toBe(200);
    const atPause = fleet.cycles.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(fleet.cycles.length).toBe(atPause);
    expect(((await (await server.api(`/v1/rollouts/${started.id}`)).json()) as Detail).state).toBe('paused');
    expect((await server.api(`/v1/rollouts/${started.id}/resume`, { method: 'POST' })).status).toBe(200);
    expect((await waitFor(started.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    await fleet.settle();
    const r1 = [1, 3, 5].map(mac);
    for (const m of r1) expect(await imageOf(m)).toBe(v6);

    expect((await server.api(`/v1/rollouts/${started.id}/rollback`, { method: 'POST' })).status).toBe(200);
    const back = await waitFor(started.id, ['rolled-back', 'failed']);
    await fleet.settle();
    expect(back.state).toBe('rolled-back');
    // Back on what the channel gave them before (v2, see the first test), each cycled there and back.
    for (const m of r1) {
      expect(await imageOf(m)).toBe(images.v2);
      expect(cyclesOf(m)).toBe(2);
    }
    expect(back.waves.flatMap((w) => w.machines.map((m) => `${m.phase}:${m.state}`))).toEqual(Array(3).fill('back:healthy'));
    expect((await server.api(`/v1/rollouts/${started.id}/rollback`, { method: 'POST' })).status).toBe(409);
  });

  it('the CLI starts, lists and shows rollouts: waves, machine states and times, and why a wave failed', async () => {
    const env = { LIVERY_URL: server.url, LIVERY_TOKEN: server.token };
    const show = await livery(['rollout', 'show', '2'], env);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^state\s+failed$/m);
    expect(show.stdout).toMatch(/^wave 1: failed \(started \S+, finished \S+\)$/m);
    expect(show.stdout).toMatch(/^web4\s+52:54:00:10:00:04\s+back: healthy\s+\d{4}-\S+\s+1\s+-$/m);
    expect(show.stdout).toMatch(/^wave 2: pending$/m);
    expect(show.stdout).toContain('why wave 1 failed:\nweb4: command test -e /dev/kvm\n  command test -e /dev/kvm:\n    no /dev/kvm on this host\n    exit status 1');
    const list = await livery(['rollout', 'list'], env);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+IMAGE\s+SELECTOR\s+STATE\s+WAVE\s+STARTED\s+REASON$/);
    expect(list.stdout).toMatch(/^2\s+\S+\s+role=web\s+failed\s+1\s+/m);
    const bad = await livery(['rollout', 'start', images.v2!, '--selector', 'role=web', '--waves', '1,50%'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("livery: 400 waves: the last wave must be 100% so every selected machine is in one (got '50%')\n");
    const pause = await livery(['rollout', 'pause', '2'], env);
    expect(pause.stderr).toBe('livery: 409 state: rollout 2 is failed; pause applies to a rollout that is running\n');
    const json = await livery(['--json', 'rollout', 'show', '1'], env);
    expect((JSON.parse(json.stdout) as Detail).state).toBe('succeeded');
  });

  it('refuses bad requests naming the field; start needs publisher, pause needs operator', async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ image: images.v2, selector: 'role' }, 400, 'selector: cannot read "role": expected key=value or key in (a,b), separated by commas'],
      [{ image: images.v2, selector: 'role=none' }, 400, 'selector: no registered machine matches role=none'],
      [{ image: images.v2, selector: 'role=web', waves: '1,50%' }, 400, "waves: the last wave must be 100% so every selected machine is in one (got '50%')"],
      [{ image: images.v2, selector: 'role=web', bootTimeout: 'soon' }, 400, "bootTimeout: expected a duration such as 30s, 10m or 1h, at most 24 h (got 'soon')"],
      [{ image: images.v2, selector: 'role=web', maxFailures: 'x' }, 400, 'maxFailures: expected a count'],
      [{ image: 'nope', selector: 'role=web' }, 404, 'image nope not found'],
      [{ image: images.v2, selector: 'role=web', maxParallel: 0 }, 400, 'body.maxParallel'],
    ];
    for (const [json, status, error] of cases) {
      const res = await server.api('/v1/rollouts', { method: 'POST', json });
      expect(res.status, JSON.stringify(json)).toBe(status);
      expect(((await res.json()) as { error: string }).error).toContain(error);
    }
    const { token: publisher } = (await (await server.api('/v1/tokens', { method: 'POST', json: { name: 'pub', role: 'publisher' } })).json()) as { token: string };
    expect((await server.api('/v1/rollouts/1/pause', { method: 'POST', token: publisher })).status).toBe(403);
    expect((await server.api('/v1/rollouts/1/pause', { method: 'POST' })).status).toBe(409);
  });
});
