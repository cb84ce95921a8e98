/**
 * The one step a crash leaves uncertain: livery recorded its intent to power-cycle a machine
 * and died before recording the BMC's answer. A new engine (a restarted livery) must not
 * cycle the machine again when it shows signs of booting, and must cycle it (once) when it
 * shows none by the boot timeout. Engines are driven tick by tick on the real CMDB of a real
 * livery, whose own engine is held still.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/index.js';
import { createLogger } from '../../src/log.js';
import { RolloutEngine } from '../../src/rollout/engine.js';
import type { RolloutPower } from '../../src/rollout/power.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { FakeFleet } from '../helpers/fake-fleet.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let v2 = '';
const fleet = new FakeFleet(() => server.url, () => 'healthy', 0);
/** The same machines rebooted by hand into an image whose agent never reports. */
const silent = new FakeFleet(() => server.url, () => 'silent', 0);
/** The BMC of a livery that dies mid-call: it never answers. */
const dying: RolloutPower & { asked: string[] } = { asked: [], hasBmc: () => true, cycle: (m) => (dying.asked.push(m.macs[0]!), new Promise(() => {})) };
const engine = (power: RolloutPower) => new RolloutEngine(server.livery.cmdb, new Catalog(server.livery.cmdb, server.config), power, createLogger('silent'));

beforeAll(async () => {
  server = await startTestServer({ http: { listen: '127.0.0.1:0', metadataRequiresOwnAddress: false } }, { rolloutTickMs: 3_600_000 });
  const health = { timeoutSeconds: 30, checks: [{ kind: 'unit' as const, value: 'ssh.service' }] };
  expect((await publishBundle(server, (await makeBundle('res', 'v1', undefined, { health })).tar, '?channel=stable')).status).toBe(201);
  v2 = ((await (await publishBundle(server, (await makeBundle('res', 'v2', undefined, { health })).tar)).json()) as { id: string }).id;
  for (const i of [1, 2, 3]) {
    const json = { macs: [`52:54:00:30:00:0${i}`], hostname: `res${i}`, labels: { group: `g${i}` }, image: { name: 'res', channel: 'stable' } };
    expect((await server.api('/v1/machines', { method: 'POST', json })).status).toBe(201);
  }
});
afterAll(async () => {
  await fleet.settle();
  await silent.settle();
  await server.stop();
});

async function rolloutOf(group: string, soak = '1s'): Promise<number> {
  const res = await server.api('/v1/rollouts', { method: 'POST', json: { image: v2, selector: `group=${group}`, waves: '100%', bootTimeout: '2s', soak } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

const row = (id: number) => server.livery.cmdb.rollouts.machines(id)[0]!;

describe('resuming a power cycle whose answer was never recorded', () => {
  it('does not cycle again when the machine shows it booted', async () => {
    const id = await rolloutOf('g1');
    const t0 = Date.now();
    engine(dying).tick(t0); // wave starts, intent recorded, BMC asked; then livery "dies"
    expect(row(id)).toMatchObject({ state: 'cycling', cycles: 1, cycleConfirmed: false });
    expect(dying.asked).toEqual(['52:54:00:30:00:01']);
    await fleet.boot('52:54:00:30:00:01'); // the cycle did happen: the machine comes up
    const restarted = engine(fleet);
    restarted.tick(t0 + 100);
    expect(row(id)).toMatchObject({ state: 'booting', cycleConfirmed: true });
    restarted.tick(t0 + 200);
    expect(row(id).state).toBe('healthy');
    restarted.tick(t0 + 1300);
    expect(server.livery.cmdb.rollouts.get(id).state).toBe('succeeded');
    expect(fleet.cycles).toEqual([]);
  });

  it('cycles once more when the machine showed no sign of booting by the boot timeout', async () => {
    const id = await rolloutOf('g2');
    const t0 = Date.now();
    engine(dying).tick(t0);
    expect(row(id).state).toBe('cycling');
    const restarted = engine(fleet);
    restarted.tick(t0 + 100);
    expect(row(id)).toMatchObject({ state: 'booting', cycleConfirmed: false });
    restarted.tick(t0 + 1500);
    expect(fleet.cycles).toEqual([]); // still within the boot timeout: wait, do not cycle
    restarted.tick(t0 + 100 + 2000);
    expect(fleet.cycles.map((c) => c.mac)).toEqual(['52:54:00:30:00:02']);
    expect(row(id)).toMatchObject({ cycles: 2 });
    await fleet.settle();
    for (let i = 0; i < 50 && row(id).state !== 'healthy'; i++) {
      restarted.tick();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(row(id).state).toBe('healthy');
  });
});

/**
 * A tick looks only at machines whose verdict may have changed (src/rollout/attention.ts): new
 * events, a deadline come, a row changed. A soaking machine that reboots without a report has
 * news once (its phone-home); its verdict then changes with time alone, when the health report
 * is overdue, and must be seen then, not at the next every-minute look at all machines.
 */
describe('a tick looks at the machines whose verdict may have changed', () => {
  it('a soaking machine rebooted without a report fails when the report is overdue, with no event since', async () => {
    const id = await rolloutOf('g3', '1h');
    const restarted = engine(fleet);
    const t0 = Date.now();
    restarted.tick(t0);
    await fleet.settle();
    restarted.tick(t0 + 100);
    expect(row(id).state).toBe('healthy');
    await silent.boot('52:54:00:30:00:03'); // rebooted by hand; the agent never reports
    const bootedAt = Date.now();
    restarted.tick(t0 + 200);
    expect(row(id).state).toBe('healthy'); // pending: the report is not due yet
    // 30 s of health timeout plus 60 s of grace after the phone-home; a look at every machine
    // comes at t0 + 60 s and again only at t0 + 120 s.
    const due = bootedAt + 90_000;
    restarted.tick(t0 + 60_000);
    expect(row(id).state).toBe('healthy');
    restarted.tick(due - 1000);
    expect(row(id).state).toBe('healthy');
    expect(due + 1000).toBeLessThan(t0 + 120_000);
    restarted.tick(due + 1000);
    // The wave fails on it and the rollout turns back at once.
    expect(server.livery.cmdb.rollouts.get(id).state).toBe('rolling-back');
    expect(server.livery.cmdb.rollouts.waves(id)[0]!.reason).toBe('res3: turned unhealthy while soaking');
  });
});
