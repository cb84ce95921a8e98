/**
 * The health report route and the trace's health stage, against a real livery on loopback:
 * reports are accepted only for the image the machine last phoned home with and only from the
 * machine's own address (with http.metadataRequiresOwnAddress on); the trace shows the
 * verdict, including the derived ones (no checks: healthy once booted; silence: no report).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthOf } from '../../src/health/verdict.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let checked: string;
let unchecked: string;
const MAC = '52:54:00:aa:00:01';

beforeAll(async () => {
  server = await startTestServer({ http: { listen: '127.0.0.1:0', metadataRequiresOwnAddress: true } });
  const withChecks = await makeBundle('web', '1', undefined, { health: { timeoutSeconds: 30, checks: [{ kind: 'unit', value: 'nginx.service' }] } });
  const without = await makeBundle('web', '2');
  checked = ((await (await publishBundle(server, withChecks.tar)).json()) as { id: string }).id;
  unchecked = ((await (await publishBundle(server, without.tar)).json()) as { id: string }).id;
  const res = await server.api('/v1/machines', { method: 'POST', json: { macs: [MAC], hostname: 'web1', ip: '127.0.0.1', image: { id: checked } } });
  expect(res.status).toBe(201);
});
afterAll(() => server.stop());

/** A boot as a machine makes it: pointed at the image, it fetches its script, then phones home. */
async function booted(imageId: string): Promise<Response> {
  expect((await server.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { image: { id: imageId } } })).status).toBe(200);
  expect((await fetch(`${server.url}/boot/${MAC}.ipxe`)).status).toBe(200);
  return server.api(`/v1/machines/${MAC}/booted`, { method: 'POST', token: null, json: { imageId } });
}
const report = (body: unknown, mac = MAC) => server.api(`/v1/machines/${mac}/health`, { method: 'POST', token: null, json: body });
const trace = async (mac = MAC) => ((await (await server.api(`/v1/machines/${mac}/trace`)).json()) as { boots: { stages: { stage: string; event: string; detail: Record<string, unknown> }[]; reached: string }[] }).boots;

describe('POST /v1/machines/{mac}/health', () => {
  it('refuses a report before any phone-home, and one for another image than the booted one', async () => {
    const early = await report({ imageId: checked, status: 'healthy', failing: [] });
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: string }).error).toContain('has not phoned home');
    expect((await booted(checked)).status).toBe(204);
    const wrong = await report({ imageId: unchecked, status: 'healthy', failing: [] });
    expect(wrong.status).toBe(409);
    expect(((await wrong.json()) as { error: string }).error).toBe(`imageId: machine ${MAC} booted image ${checked}, not ${unchecked}`);
  });

  it('names the field of a malformed report (400), never 500', async () => {
    const cases: [unknown, string][] = [
      [{ imageId: checked, status: 'fine', failing: [] }, 'body.status'],
      [{ imageId: checked, status: 'unhealthy' }, 'missing field "failing"'],
      [{ imageId: checked, status: 'healthy', failing: [], extra: 1 }, 'unknown field "extra"'],
      [{ imageId: checked, status: 'healthy', failing: [{ check: 'unit x', output: '' }] }, 'failing: must be empty when status is healthy'],
    ];
    for (const [body, message] of cases) {
      const res = await report(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error).toContain(message);
    }
    expect((await report({ imageId: checked, status: 'healthy', failing: [] }, 'not-a-mac')).status).toBe(400);
    expect((await report({ imageId: checked, status: 'healthy', failing: [] }, '52:54:00:ff:ff:ff')).status).toBe(404);
  });

  it('is refused from another address than the machine\'s own', async () => {
    await server.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { ip: '192.0.2.77' } });
    try {
      const res = await report({ imageId: checked, status: 'healthy', failing: [] });
      expect(res.status).toBe(403);
    } finally {
      await server.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { ip: '127.0.0.1' } });
    }
  });

  it('records an unhealthy report with its failing checks; the trace ends the boot with it', async () => {
    const failing = [{ check: 'unit nginx.service', output: 'failed\n● nginx.service - A high performance web server\n  bind() to 0.0.0.0:80 failed' }];
    expect((await report({ imageId: checked, status: 'unhealthy', failing })).status).toBe(204);
    const last = (await trace()).at(-1)!;
    expect(last.stages.map((s) => s.stage)).toEqual(['script', 'booted', 'unhealthy']);
    expect(last.reached).toBe('unhealthy');
    expect(last.stages.at(-1)!.detail.failing).toEqual(failing);
    const v = healthOf(server.livery.cmdb, server.livery.cmdb.machines.get(MAC));
    expect([v.state, v.imageId, v.reason]).toEqual(['unhealthy', checked, 'unit nginx.service']);
  });

  it('a new boot starts a new trace entry; its healthy report closes it', async () => {
    expect((await booted(checked)).status).toBe(204);
    expect(healthOf(server.livery.cmdb, server.livery.cmdb.machines.get(MAC)).state).toBe('pending');
    expect((await report({ imageId: checked, status: 'healthy', failing: [] })).status).toBe(204);
    const boots = await trace();
    expect(boots.at(-1)!.stages.map((s) => s.stage)).toEqual(['script', 'booted', 'healthy']);
    expect(boots.at(-2)!.stages.map((s) => s.stage)).toEqual(['script', 'booted', 'unhealthy']);
  });
});

describe('derived verdicts', () => {
  it('an image without checks is healthy once the machine phones home with it', async () => {
    expect((await booted(unchecked)).status).toBe(204);
    const last = (await trace()).at(-1)!;
    expect(last.stages.map((s) => `${s.stage}/${s.event}`)).toEqual(['script/ipxe-script', 'booted/booted', 'healthy/no-checks']);
  });

  it('a machine that never reports is unhealthy: no report, once the timeout and grace have passed', async () => {
    const { cmdb } = server.livery;
    // A machine whose last boot phoned home 10 minutes ago (timeout 30 s + 60 s grace long gone),
    // written as the routes would. Its own MAC: the trace orders events by time, and the other
    // tests' machine has booted since.
    const mac = '52:54:00:aa:00:02';
    const machine = cmdb.machines.create({ macs: [mac], image: { id: checked } });
    cmdb.events.add({ type: 'ipxe-script', mac, machineId: machine.id, imageId: checked, at: Date.now() - 601_000 });
    cmdb.events.add({ type: 'booted', mac, machineId: machine.id, imageId: checked, at: Date.now() - 600_000 });
    const last = (await trace(mac)).at(-1)!;
    expect(last.stages.map((s) => `${s.stage}/${s.event}`)).toEqual(['script/ipxe-script', 'booted/booted', 'unhealthy/no-report']);
    expect(last.stages[2]!.detail).toEqual({ reason: 'no report' });
    const now = Date.now();
    cmdb.events.add({ type: 'booted', mac, machineId: machine.id, imageId: checked, at: now });
    expect(healthOf(cmdb, machine, { now: now + 89_000 }).state).toBe('pending');
    expect(healthOf(cmdb, machine, { now: now + 90_000 })).toMatchObject({ state: 'unhealthy', reason: 'no report' });
  });
});
