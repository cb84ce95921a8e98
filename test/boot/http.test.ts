import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/load.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

const MAC = '52:54:00:aa:00:01';
const templates = tempDir();
let s: TestServer;
const ids: Record<string, string> = {};

async function publish(version: string, channel?: string) {
  const { tar, manifest } = await makeBundle('minimal', version, undefined, { kernelArgs: 'quiet' });
  const res = await publishBundle(s, tar, channel ? `?channel=${channel}` : '');
  expect(res.status).toBe(201);
  const image = await res.json();
  ids[version] = image.id;
  return { image, manifest };
}
const script = async (mac: string) => {
  const res = await fetch(`${s.url}/boot/${mac}.ipxe`);
  expect(res.status).toBe(200);
  return res.text();
};

beforeAll(async () => {
  cpSync(join(PACKAGE_ROOT, 'pxe-templates'), templates.path, { recursive: true });
  rmSync(join(templates.path, 'ipxe/exit.ipxe'));
  // Templates are re-read on every render here so the edit test sees its change at once.
  s = await startTestServer({ boot: { templatesDir: templates.path } });
  await publish('1.0', 'stable');
  await publish('2.0');
  await s.api('/v1/machines', { method: 'POST', json: { macs: [MAC], hostname: 'node1', ip: '127.0.0.1', image: { name: 'minimal' }, kernelArgs: 'loglevel=7', vars: { role: 'db' } } });
});
afterAll(async () => {
  await s.stop();
  templates.cleanup();
});

describe('boot scripts', () => {
  it('chains /boot.ipxe to the NIC’s own script', async () => {
    const text = await (await fetch(`${s.url}/boot.ipxe`)).text();
    expect(text).toMatch(/^#!ipxe/);
    expect(text).toContain(`chain ${s.url}/boot/\${net0/mac}.ipxe`);
  });

  it('renders the machine’s image, kernel command line and rootfs checksum', async () => {
    const text = await script('52-54-00-AA-00-01');
    const image = (await (await s.api(`/v1/images/${ids['1.0']}`)).json()) as { artifacts: { role: string; sha256: string }[] };
    const rootfsSha = image.artifacts.find((a) => a.role === 'rootfs')!.sha256;
    expect(text).toContain(`kernel --name vmlinuz ${s.url}/images/${ids['1.0']}/vmlinuz?mac=${MAC} initrd=initrd.img BOOTIF=01-52-54-00-aa-00-01`);
    expect(text).toContain(`livery.rootfs=${s.url}/images/${ids['1.0']}/rootfs.squashfs?mac=${MAC} livery.rootfs.sha256=${rootfsSha}`);
    expect(text).toContain(`livery.server=${s.url} livery.image=${ids['1.0']}`);
    expect(text).toContain('console=tty0 console=ttyS0,115200 quiet loglevel=7 || goto retry');
    expect(text).toContain(`initrd --name initrd.img ${s.url}/images/${ids['1.0']}/initrd.img?mac=${MAC}`);
  });

  it('follows promote, rollback and pins on the next boot', async () => {
    await s.api(`/v1/images/${ids['2.0']}/promote`, { method: 'POST', json: { channel: 'stable' } });
    expect(await script(MAC)).toContain(`livery.image=${ids['2.0']}`);
    await s.api('/v1/channels/minimal/stable/rollback', { method: 'POST' });
    expect(await script(MAC)).toContain(`livery.image=${ids['1.0']}`);
    await s.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { image: { id: ids['2.0'] } } });
    expect(await script(MAC)).toContain(`livery.image=${ids['2.0']}`);
    await s.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { image: { id: null } } });
    expect(await script(MAC)).toContain(`livery.image=${ids['1.0']}`);
  });

  it('applies the subnet policy to unknown MACs, never a server error', async () => {
    // No subnet contains 127.0.0.1 yet: an unknown MAC is told to exit, and nothing is registered.
    // exit.ipxe was removed before start: a template that never loaded still gets the machine a
    // script that says why and retries.
    const fallback = await script('02:00:00:00:00:01');
    expect(fallback).toMatch(/echo livery: cannot render ipxe\/exit\.ipxe: .*no such template/);
    expect(fallback).toContain(`chain --replace ${s.url}/boot/02:00:00:00:00:01.ipxe`);
    writeFileSync(join(templates.path, 'ipxe/exit.ipxe'), readFileSync(join(PACKAGE_ROOT, 'pxe-templates/ipxe/exit.ipxe')));
    s.livery.templates.scan();
    expect(await script('02:00:00:00:00:01')).toMatch(/unknown MAC and no subnet matches[\s\S]*\nexit\n/);
    expect((await (await s.api('/v1/machines?state=discovered')).json()).items).toHaveLength(0);

    await s.api('/v1/subnets', { method: 'POST', json: { cidr: '127.0.0.0/8', name: 'loopback', policy: 'discover' } });
    const waiting = await script('02:00:00:00:00:02');
    expect(waiting).toContain('policy is discover');
    expect(waiting).toContain(`chain --replace ${s.url}/boot/02:00:00:00:00:02.ipxe`);
    const discovered = (await (await s.api('/v1/machines?state=discovered')).json()).items;
    expect(discovered.map((m: { macs: string[] }) => m.macs[0])).toEqual(['02:00:00:00:00:02']);

    await s.api('/v1/subnets/loopback', { method: 'PATCH', json: { policy: 'default-image', defaultImage: { name: 'minimal', channel: 'stable' } } });
    expect(await script('02:00:00:00:00:03')).toContain(`livery.image=${ids['1.0']}`);

    await s.api('/v1/subnets/loopback', { method: 'PATCH', json: { policy: 'ignore' } });
    expect(await script('02:00:00:00:00:04')).toMatch(/policy is ignore[\s\S]*\nexit\n/);
    await s.api('/v1/subnets/loopback', { method: 'DELETE' });

    const bad = await fetch(`${s.url}/boot/not-a-mac.ipxe`);
    expect(bad.status).toBe(404);
    expect((await bad.json()).error).toContain('expected /boot/<mac>.ipxe');
  });

  it('keeps the last good template when an edit breaks it, and names file and line', async () => {
    const file = join(templates.path, 'ipxe/boot.ipxe');
    const source = readFileSync(file, 'utf8');
    const before = await script(MAC);
    writeFileSync(file, '#!ipxe\necho {{name}}\n{{#if image}}\nkernel {{kernelUrl}}\n');
    s.livery.templates.scan();
    expect(s.livery.templates.problems().map((p) => p.message)).toEqual([expect.stringMatching(/^ipxe\/boot\.ipxe:\d+: Parse error/)]);
    expect(await script(MAC)).toBe(before);
    writeFileSync(file, '#!ipxe\necho {{nonsense.field}}\n');
    s.livery.templates.scan();
    expect(s.livery.templates.problems().map((p) => p.message)).toEqual([expect.stringMatching(/^ipxe\/boot\.ipxe:2: "field" not defined/)]);
    expect(await script(MAC)).toBe(before);
    writeFileSync(file, source.replace(/^#!ipxe/, '#!ipxe\n# edited'));
    s.livery.templates.scan();
    expect(await script(MAC)).toContain('# edited');
  });

  it('explains the decision', async () => {
    const e = await (await s.api(`/v1/machines/node1/explain?firmware=bios-pxe`)).json();
    expect(e).toMatchObject({ mac: MAC, policy: 'known', action: 'boot', image: { id: ids['1.0'], channel: 'stable' }, next: { kind: 'tftp', file: 'undionly.kpxe' } });
    expect(e.reasons.join('\n')).toContain(`minimal@stable is ${ids['1.0']}`);
    expect(e.script).toContain('kernel --name vmlinuz');
  });
});

describe('metadata, phone-home, trace and events', () => {
  it('serves metadata as JSON, shell env and cloud-init', async () => {
    const md = await (await fetch(`${s.url}/v1/metadata/${MAC}`)).json();
    expect(md).toMatchObject({ mac: MAC, hostname: 'node1', vars: { role: 'db' }, image: { id: ids['1.0'], name: 'minimal' } });
    const env = await (await fetch(`${s.url}/v1/metadata/${MAC}?format=env`)).text();
    expect(env).toContain("LIVERY_HOSTNAME='node1'\n");
    expect(env).toContain("LIVERY_VAR_ROLE='db'\n");
    expect(await (await fetch(`${s.url}/cloud-init/${MAC}/meta-data`)).text()).toContain('local-hostname: "node1"');
    expect((await fetch(`${s.url}/v1/metadata/02:00:00:00:99:99`)).status).toBe(404);
  });

  it('records a simulated boot stage by stage, and streams it over SSE', async () => {
    const ac = new AbortController();
    const sse = await s.api(`/v1/events?mac=${MAC}`, { signal: ac.signal });
    expect(sse.headers.get('content-type')).toBe('text/event-stream');
    const reader = sse.body!.getReader();
    let streamed = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        streamed += new TextDecoder().decode(value);
        if (streamed.includes('event: booted')) break;
      }
    })().catch(() => undefined);

    await script(MAC);
    for (const file of ['vmlinuz', 'initrd.img', 'rootfs.squashfs']) {
      const res = await fetch(`${s.url}/images/${ids['1.0']}/${file}?mac=${MAC}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const booted = await fetch(`${s.url}/v1/machines/${MAC}/booted`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ imageId: ids['1.0'], kernel: '6.1.0-test', uptimeMs: 12345 }),
    });
    expect(booted.status).toBe(204);
    await Promise.race([reading, new Promise((r) => setTimeout(r, 5000))]);
    ac.abort();
    for (const type of ['ipxe-script', 'artifact', 'booted']) expect(streamed).toContain(`event: ${type}`);

    const trace = await (await s.api('/v1/machines/node1/trace')).json();
    const last = trace.boots[trace.boots.length - 1];
    // The test image declares no health checks: healthy as soon as it phoned home with it.
    expect(last.stages.map((x: { stage: string }) => x.stage)).toEqual(['script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
    expect(last).toMatchObject({ complete: true, imageId: ids['1.0'] });

    const bad = await fetch(`${s.url}/v1/machines/${MAC}/booted`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"kernel": "x"}' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toContain('missing field "imageId"');
  });
});
