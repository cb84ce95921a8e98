/**
 * Facts reports against a real livery on loopback: taken only for the machine's own running
 * boot, bad bodies refused naming the field, drift between boots raised as hardware-changed
 * (with facts.onDrift's label, or the machine left out of rollouts), facts read back with their
 * diff, filtered in the machine list and matched by assignment selectors; and commissioning,
 * which records the BMC a machine reports (its address only: the credentials are the operator's).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FactsReport } from '../../src/facts/types.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { liveryAsync } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REPORT = JSON.parse(readFileSync('test/fixtures/facts/host-virtio.json', 'utf8')) as FactsReport;
/** The captured report with the memory the kernel sees replaced. */
const withMemory = (kb: number): FactsReport => ({ ...REPORT, meminfo: `MemTotal:       ${kb} kB\n` });
const GIB_KB = 1024 * 1024;

async function publish(server: TestServer, name: string, version: string): Promise<string> {
  const bundle = await makeBundle(name, version);
  return ((await (await publishBundle(server, bundle.tar, '?channel=stable')).json()) as { id: string }).id;
}

const json = async <T>(res: Response | Promise<Response>): Promise<T> => (await res).json() as Promise<T>;
/** Events of one type, read from the CMDB (GET /v1/events is a stream). */
const events = async (server: TestServer, type: string) => server.livery.cmdb.events.tail(0, 10_000).filter((e) => e.type === type);

/** One boot of `mac` as a machine makes it: fetches its script, phones home with the image it got. */
async function boot(server: TestServer, mac: string): Promise<string> {
  const script = await (await fetch(`${server.url}/boot/${mac}.ipxe`)).text();
  const imageId = /livery\.image=(\S+)/.exec(script)?.[1];
  if (!imageId) throw new Error(`no image in the script of ${mac}:\n${script}`);
  expect((await server.api(`/v1/machines/${mac}/booted`, { method: 'POST', token: null, json: { imageId } })).status).toBe(204);
  return imageId;
}
const report = (server: TestServer, mac: string, body: unknown) => server.api(`/v1/machines/${mac}/facts`, { method: 'POST', token: null, json: body });

describe('facts of known machines (own-address checks on, facts.onDrift label)', () => {
  let server: TestServer;
  let imageId: string;
  const MAC = '52:54:00:fa:00:01';

  beforeAll(async () => {
    server = await startTestServer({ http: { listen: '127.0.0.1:0', metadataRequiresOwnAddress: true } });
    await publish(server, 'web', '1');
    expect((await server.api('/v1/machines', { method: 'POST', json: { macs: [MAC], hostname: 'web1', ip: '127.0.0.1', image: { name: 'web' } } })).status).toBe(201);
  });
  afterAll(() => server.stop());

  it('refuses facts before the phone-home, for another image, and from another address', async () => {
    const early = await report(server, MAC, { imageId: 'x', report: REPORT });
    expect(early.status).toBe(409);
    expect((await json<{ error: string }>(early)).error).toContain('has not phoned home');
    imageId = await boot(server, MAC);
    const wrong = await report(server, MAC, { imageId: 'other', report: REPORT });
    expect(wrong.status).toBe(409);
    expect((await json<{ error: string }>(wrong)).error).toBe(`imageId: machine ${MAC} booted image ${imageId}, not other`);
    await server.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { ip: '192.0.2.77' } });
    try {
      expect((await report(server, MAC, { imageId, report: REPORT })).status).toBe(403);
    } finally {
      await server.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { ip: '127.0.0.1' } });
    }
    expect((await report(server, '52:54:00:fa:ff:ff', { imageId, report: REPORT })).status).toBe(404);
    expect((await server.api(`/v1/machines/${MAC}/facts`)).status).toBe(404);
  });

  it('names the field of a bad body (400), never 500', async () => {
    const { cpuinfo: _c, ...noCpu } = REPORT;
    const cases: [unknown, string][] = [
      [{ imageId, report: { ...REPORT, format: 2 } }, 'body.report.format'],
      [{ imageId, report: noCpu }, 'body.report: missing field "cpuinfo"'],
      [{ imageId, report: { ...REPORT, extra: '' } }, 'body.report: unknown field "extra"'],
      [{ imageId, report: { ...REPORT, cpuinfo: 'flags : fpu\n' } }, 'body.report.cpuinfo: lists no processor'],
      [{ imageId, report: { ...REPORT, meminfo: '' } }, 'body.report.meminfo: has no MemTotal line'],
      [{ imageId, report: { ...REPORT, sysfs: 'x'.repeat(129 * 1024) } }, 'body.report.sysfs'],
      [{ report: REPORT }, 'missing field "imageId"'],
    ];
    for (const [body, message] of cases) {
      const res = await report(server, MAC, body);
      expect(res.status, message).toBe(400);
      expect((await json<{ error: string }>(res)).error).toContain(message);
    }
  });

  it('stores the boot\'s facts on the machine; the list filters and shows them; the raw report is kept', async () => {
    const res = await report(server, MAC, { imageId, report: REPORT });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ facts: { 'cpu.threads': 2, memory_gb: 23.5 }, changes: [], commissioned: false });
    const machine = await json<{ facts: Record<string, unknown>; labels: Record<string, string> }>(server.api(`/v1/machines/${MAC}`));
    expect(machine.facts).toMatchObject({ 'cpu.vendor': 'AMD', 'cpu.threads': 2, 'disks.count': 1, 'nics.count': 1 });
    expect(machine.labels).toEqual({});
    const list = async (q: string) => (await json<{ items: { macs: string[] }[] }>(server.api(`/v1/machines?${q}`))).items.map((m) => m.macs[0]);
    expect(await list('fact=cpu.threads%3E%3D2&fact=cpu.vendor%3DAMD')).toEqual([MAC]);
    expect(await list(`fact=${encodeURIComponent('memory_gb>=256')}`)).toEqual([]);
    expect(await list(`fact=${encodeURIComponent('cpu.vendor!=AMD')}`)).toEqual([]);
    const bad = await server.api(`/v1/machines?fact=${encodeURIComponent('cpu.vendor>AMD')}`);
    expect(bad.status).toBe(400);
    expect((await json<{ error: string }>(bad)).error).toBe('querystring.fact: cpu.vendor>AMD: > compares numbers; use = or != for text');
    expect(await json(server.api(`/v1/machines/${MAC}/facts?raw=true`))).toEqual(REPORT);
    expect(await events(server, 'hardware-changed')).toEqual([]);
  });

  it('a boot with other memory raises hardware-changed with the diff and labels the machine drift=hardware; a repeated report raises nothing more', async () => {
    imageId = await boot(server, MAC);
    const res = await report(server, MAC, { imageId, report: withMemory(2 * GIB_KB) });
    expect(res.status).toBe(200);
    const change = { key: 'memory.bytes', before: 24683748 * 1024, after: 2 * GIB_KB * 1024 };
    expect(await json(res)).toMatchObject({ changes: [change] });
    expect((await report(server, MAC, { imageId, report: withMemory(2 * GIB_KB) })).status).toBe(200);
    const raised = await events(server, 'hardware-changed');
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ mac: MAC, detail: { changes: [change], onDrift: 'label' } });
    expect((await json<{ labels: Record<string, string> }>(server.api(`/v1/machines/${MAC}`))).labels).toEqual({ drift: 'hardware' });
    const diff = await json<{ changes: unknown[]; previous: { bootEventId: number } | null; flat: Record<string, unknown> }>(server.api(`/v1/machines/${MAC}/facts?diff=1`));
    expect(diff.changes).toEqual([change]);
    expect(diff.previous).not.toBeNull();
    expect(diff.flat.memory_gb).toBe(2);
  });

  it('refuses a report once the machine is booting again (a new script served since its phone-home)', async () => {
    await fetch(`${server.url}/boot/${MAC}.ipxe`);
    const res = await report(server, MAC, { imageId, report: REPORT });
    expect(res.status).toBe(409);
    expect((await json<{ error: string }>(res)).error).toContain('is booting again');
  });

  it('facts.* selects images in assignment rules', async () => {
    const amd = await publish(server, 'amd-tuned', '1');
    await server.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { image: { name: null } } });
    expect((await server.api('/v1/assignments', { method: 'POST', json: { selector: 'facts.cpu.vendor=AMD', image: 'amd-tuned' } })).status).toBe(201);
    const explained = await json<{ image: { id: string }; reasons: string[] }>(server.api(`/v1/machines/${MAC}/explain`));
    expect(explained.image.id).toBe(amd);
    expect(explained.reasons.join('\n')).toContain('(facts.cpu.vendor=AMD -> amd-tuned@stable');
  });
});

describe('commissioning and drift under facts.onDrift retire (machines call from loopback: own-address checks off)', () => {
  let server: TestServer;
  let commission: string;
  const MAC = '52:54:00:fa:00:02';

  beforeAll(async () => {
    server = await startTestServer({ http: { listen: '127.0.0.1:0', metadataRequiresOwnAddress: false }, facts: { onDrift: 'retire' } });
    commission = await publish(server, 'commission', '1');
    await publish(server, 'web', '1');
    expect((await server.api('/v1/subnets', { method: 'POST', json: { cidr: '127.0.0.0/8', name: 'loopback', policy: 'commission' } })).status).toBe(201);
  });
  afterAll(() => server.stop());

  it('an unknown MAC boots the commission image told to power off, and is registered with its facts', async () => {
    const script = await (await fetch(`${server.url}/boot/${MAC}.ipxe`)).text();
    expect(script).toContain(`livery.image=${commission}`);
    expect(script).toContain('livery.commission=poweroff');
    expect(await json(server.api(`/v1/machines/${MAC}`))).toMatchObject({ state: 'discovered', facts: null });
    expect((await server.api(`/v1/machines/${MAC}/booted`, { method: 'POST', token: null, json: { imageId: commission } })).status).toBe(204);
    const res = await report(server, MAC, { imageId: commission, report: { ...REPORT, 'ipmi-lan': 'IP Address              : 10.9.0.7\nMAC Address             : 02:00:00:00:09:07\n' } });
    expect(await json(res)).toMatchObject({ commissioned: true });
    expect(await json(server.api(`/v1/machines/${MAC}`))).toMatchObject({ state: 'registered', facts: { 'cpu.threads': 2, 'bmc.address': '10.9.0.7' } });
    expect(await events(server, 'commissioned')).toEqual([
      expect.objectContaining({ mac: MAC, detail: expect.objectContaining({ bmc: { address: '10.9.0.7', mac: '02:00:00:00:09:07' }, bmcRecorded: true }) }),
    ]);
  });

  it('records the BMC it reported without credentials: power actions say so (409) until the operator sets them', async () => {
    expect(await json(server.api(`/v1/machines/${MAC}/bmc`))).toMatchObject({ driver: 'ipmi', address: '10.9.0.7', port: null, username: null, passwordSet: false });
    const shown = await liveryAsync(['--url', server.url, '--token', server.token, 'machine', 'show', MAC]);
    expect(shown.stdout).toMatch(
      new RegExp(`^bmc\\s+ipmi://10\\.9\\.0\\.7 \\(found by commissioning; credentials not set: livery machine set ${MAC} --bmc ipmi://USER@10\\.9\\.0\\.7 --bmc-password-file FILE\\)$`, 'm'),
    );
    const refused = await server.api(`/v1/machines/${MAC}/power`, { method: 'POST', json: { action: 'cycle' } });
    expect(refused.status).toBe(409);
    expect((await json<{ error: string }>(refused)).error).toContain(`BMC at 10.9.0.7 has no credentials yet: commissioning records only its address (set them with livery machine set ${MAC} --bmc ipmi://USER@10.9.0.7`);
    // A username alone is not enough: there is no password to keep.
    const found = { driver: 'ipmi', address: '10.9.0.7' };
    const noPassword = await server.api(`/v1/machines/${MAC}/bmc`, { method: 'PUT', json: { ...found, username: 'admin' } });
    expect(noPassword.status).toBe(400);
    expect((await json<{ error: string }>(noPassword)).error).toBe('bmc.password: is required: none is stored yet (a BMC commissioning found)');
    expect(await json(server.api(`/v1/machines/${MAC}/bmc`, { method: 'PUT', json: { ...found, username: 'admin', password: 's3cret' } }))).toMatchObject({
      address: '10.9.0.7',
      username: 'admin',
      passwordSet: true,
    });
    expect(server.livery.cmdb.audit.list({ actor: 'livery:facts' }).map((a) => a.action)).toContain('machine.bmc.found');
  });

  it('never replaces a BMC the operator set before commissioning, and records none for an unset address (0.0.0.0)', async () => {
    const [SET, UNSET] = ['52:54:00:fa:00:03', '52:54:00:fa:00:04'];
    const lan = (ip: string) => ({ ...REPORT, 'ipmi-lan': `IP Address              : ${ip}\nMAC Address             : 02:00:00:00:09:08\n` });
    for (const mac of [SET, UNSET]) await fetch(`${server.url}/boot/${mac}.ipxe`);
    expect((await server.api(`/v1/machines/${SET}/bmc`, { method: 'PUT', json: { driver: 'redfish', address: 'bmc-set.example', username: 'root', password: 'p' } })).status).toBe(200);
    for (const [mac, ip] of [[SET, '10.9.0.8'], [UNSET, '0.0.0.0']] as const) {
      expect((await server.api(`/v1/machines/${mac}/booted`, { method: 'POST', token: null, json: { imageId: commission } })).status).toBe(204);
      expect(await json(report(server, mac, { imageId: commission, report: lan(ip) }))).toMatchObject({ commissioned: true });
    }
    expect(await json(server.api(`/v1/machines/${SET}/bmc`))).toMatchObject({ driver: 'redfish', address: 'bmc-set.example', username: 'root', passwordSet: true });
    expect((await server.api(`/v1/machines/${UNSET}/bmc`)).status).toBe(404);
    const recorded = (await events(server, 'commissioned')).map((e) => [e.mac, e.detail.bmcRecorded]);
    expect(recorded).toEqual([[MAC, true], [SET, false], [UNSET, false]]);
  });

  it('with nothing else to boot it boots the commission image again; drift labels it and new rollouts leave it out', async () => {
    expect(await boot(server, MAC)).toBe(commission);
    expect((await report(server, MAC, { imageId: commission, report: withMemory(GIB_KB) })).status).toBe(200);
    expect(await events(server, 'hardware-changed')).toEqual([expect.objectContaining({ detail: expect.objectContaining({ onDrift: 'retire' }) })]);
    expect((await json<{ labels: Record<string, string> }>(server.api(`/v1/machines/${MAC}`))).labels).toEqual({ drift: 'hardware' });
    const web = await json<{ items: { id: string; name: string }[] }>(server.api('/v1/images'));
    const webId = web.items.find((i) => i.name === 'web')!.id;
    const refused = await server.api('/v1/rollouts', { method: 'POST', json: { image: webId, selector: 'subnet=loopback' } });
    expect(refused.status).toBe(400);
    expect((await json<{ error: string }>(refused)).error).toContain('machines labelled drift=hardware are left out: facts.onDrift is retire');
  });
});
