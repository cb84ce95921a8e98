import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFactsReport } from '../../src/facts/parse.js';
import type { FactsReport } from '../../src/facts/types.js';
import { agentHealthConfig, type HealthSpec } from '../../src/health/spec.js';
import { type AgentRun, runAgent as runAgentScript } from '../helpers/agent-run.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Runs the real agent script (the one every image carries) against a fake livery server on
 * 127.0.0.1 (see helpers/agent-run.ts for how it is kept off the build machine's files).
 */
const MAC = '52:54:00:12:34:56';
const IMAGE = 'minimal-2026.11.23.1';

interface Seen {
  method: string;
  url: string;
  contentType?: string;
  body: string;
}

let server: Server;
let port: number;
let seen: Seen[] = [];
let metadataStatus = 200;
let bootedStatus = 204;
let metadataBody = '';
const scratch = mkdtempSync(join(tmpdir(), 'livery-agent-'));

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}), body });
      if (req.method === 'GET' && req.url!.startsWith('/v1/metadata/')) {
        res.writeHead(metadataStatus, { 'content-type': 'text/plain' }).end(metadataStatus === 200 ? metadataBody : 'not found');
      } else if (req.method === 'POST' && req.url!.endsWith('/booted')) {
        res.writeHead(bootedStatus).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(scratch, { recursive: true, force: true });
});

afterEach(() => {
  seen = [];
  metadataStatus = 200;
  bootedStatus = 204;
});

let runs = 0;
function runAgent(cmdline: string, prepare?: (root: string) => void, path?: string): Promise<AgentRun> {
  return runAgentScript(join(scratch, `root${++runs}`), cmdline, { ...(prepare ? { prepare } : {}), ...(path ? { path } : {}) });
}

const canUnshare = process.getuid?.() === 0;

describe.skipIf(!canUnshare)('livery-agent (needs root for a private UTS namespace)', () => {
  const cmdline = () => `BOOT_IMAGE=vmlinuz BOOTIF=01-52-54-00-12-34-56 livery.server=http://127.0.0.1:${port}/ livery.image=${IMAGE} console=ttyS0,115200`;

  it('applies hostname and DNS from metadata, phones home, and announces the boot', async () => {
    const pwned = join(scratch, 'pwned');
    metadataBody = [
      "LIVERY_HOSTNAME='node1'",
      "LIVERY_IP='192.0.2.10'",
      "LIVERY_PREFIX='24'",
      "LIVERY_DNS='192.0.2.53 192.0.2.54'",
      "LIVERY_DOMAIN='lab.example'",
      "LIVERY_IMAGE_ID='img-1'",
      `LIVERY_VAR_NOTE='it'\\''s $(touch ${pwned}1) \`touch ${pwned}2\` ; rm -rf /'`,
      '# a comment line',
      '',
      `LIVERY_EVIL=$(touch ${pwned}3)`,
      "lowercase_name='x'",
      "LIVERY_HALF='unterminated",
      "LIVERY_SPLICE='a'b'",
    ].join('\n');
    const r = await runAgent(cmdline());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`livery-agent: booted image ${IMAGE} as node1\n`);
    expect(r.hostname).toBe('node1');
    expect(r.stdout.match(/ignoring a malformed metadata line/g)).toHaveLength(4);

    expect(readFileSync(join(r.root, 'etc/hostname'), 'utf8')).toBe('node1\n');
    expect(readFileSync(join(r.root, 'etc/hosts'), 'utf8')).toContain('127.0.1.1\tnode1.lab.example node1\n');
    expect(readFileSync(join(r.root, 'etc/resolv.conf'), 'utf8')).toBe('search lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n');
    const kept = readFileSync(join(r.root, 'run/livery/metadata.env'), 'utf8').trim().split('\n');
    expect(kept.map((l) => l.split('=')[0])).toEqual(['LIVERY_HOSTNAME', 'LIVERY_IP', 'LIVERY_PREFIX', 'LIVERY_DNS', 'LIVERY_DOMAIN', 'LIVERY_IMAGE_ID', 'LIVERY_VAR_NOTE']);
    for (const n of [1, 2, 3]) expect(existsSync(`${pwned}${n}`)).toBe(false);

    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`GET /v1/metadata/${MAC}?format=env`, `POST /v1/machines/${MAC}/booted`, `POST /v1/machines/${MAC}/facts`]);
    // The facts report: livery-facts' JSON, wrapped with the image, parsed by the server's parser.
    const facts = JSON.parse(seen[2]!.body) as { imageId: string; report: FactsReport };
    expect(facts.imageId).toBe(IMAGE);
    expect(parseFactsReport(facts.report).cpu.threads).toBe(cpus().length);
    expect(r.stdout).toContain('livery-agent: could not report facts');
    const post = seen[1]!;
    expect(post.contentType).toBe('application/json');
    const body = JSON.parse(post.body) as { imageId: string; kernel: string; uptimeMs: number };
    expect(body.imageId).toBe(IMAGE);
    expect(body.kernel).toBe(release());
    const uptimeMs = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
    expect(body.uptimeMs).toBeGreaterThan(0);
    expect(body.uptimeMs).toBeLessThanOrEqual(uptimeMs);
    expect(Object.keys(body).sort()).toEqual(['imageId', 'kernel', 'uptimeMs']);
  });

  it("takes livery's own parameters from their first occurrence: later copies in user kernel args are ignored", async () => {
    metadataBody = "LIVERY_HOSTNAME='node4'\n";
    const r = await runAgent(`${cmdline()} livery.server=http://127.0.0.1:1/ livery.image=evil BOOTIF=01-02-00-00-00-00-66`);
    expect(r.code).toBe(0);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`GET /v1/metadata/${MAC}?format=env`, `POST /v1/machines/${MAC}/booted`, `POST /v1/machines/${MAC}/facts`]);
    expect((JSON.parse(seen[1]!.body) as { imageId: string }).imageId).toBe(IMAGE);
  });

  it('still reports the boot when the server has no metadata for the machine', async () => {
    metadataStatus = 404;
    const r = await runAgent(cmdline());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`could not fetch metadata from http://127.0.0.1:${port} for ${MAC}`);
    expect(seen.map((s) => s.method)).toEqual(['GET', 'POST', 'POST']);
    expect(existsSync(join(r.root, 'etc/hostname'))).toBe(false);
    expect(r.stdout).toMatch(new RegExp(`booted image ${IMAGE} as \\S+`));
  });

  it('fails visibly when the server refuses the boot report', async () => {
    metadataBody = "LIVERY_HOSTNAME='node2'\n";
    bootedStatus = 400;
    const r = await runAgent(cmdline());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`livery-agent: could not report the boot to http://127.0.0.1:${port}`);
    // ...with the network state it had then, for a console log read after the machine is gone.
    expect(r.stdout).toMatch(/could not report the boot to \S+ \(addresses: .*lo 127\.0\.0\.1\/8, .*routes: /);
    expect(r.stdout).not.toContain('booted image');
  });

  it('without BOOTIF, uses the MAC of the interface the initramfs booted from', async () => {
    metadataBody = "LIVERY_HOSTNAME='node3'\n";
    const r = await runAgent(`livery.server=http://127.0.0.1:${port} livery.image=x`, (root) => writeFileSync(join(root, 'run/livery/net.env'), "interface='lo'\nip='127.0.0.1'\n"));
    expect(r.code).toBe(0);
    expect(seen[0]!.url).toBe('/v1/metadata/00:00:00:00:00:00?format=env');
    expect(r.hostname).toBe('node3');
  });

  it('does nothing on a machine not booted by livery', async () => {
    const r = await runAgent('BOOT_IMAGE=vmlinuz root=/dev/sda1');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no livery.server= on the kernel command line');
    expect(seen).toEqual([]);
  });
});

/**
 * The agent's health checks against a real livery on loopback. The test host runs no systemd,
 * so `systemctl` is a script that answers `is-active` and `status` from files under
 * <scratch>/units; the VM end-to-end test runs the agent under the real one.
 */
describe.skipIf(!canUnshare)('livery-agent health checks (against a real livery)', () => {
  let livery: TestServer;
  const HMAC = '52:54:00:12:34:57';
  const units = join(scratch, 'units');
  const bin = join(scratch, 'bin');
  const path = () => `${bin}:${process.env.PATH}`;
  const images = new Map<string, string>();

  beforeAll(async () => {
    livery = await startTestServer({ http: { listen: '127.0.0.1:0', metadataRequiresOwnAddress: true } });
    mkdirSync(units, { recursive: true });
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, 'systemctl'),
      [
        '#!/bin/sh',
        `cmd=$1; shift; [ "$cmd" = status ] && shift 3`,
        'rc=0',
        `for u in "$@"; do state=$(cat "${units}/$u" 2>/dev/null || echo inactive); [ "$state" = active ] || rc=3`,
        '  if [ "$cmd" = status ]; then echo "x $u - test unit"; echo "     Active: $state"; echo "$u: bind() failed"; else echo "$state"; fi',
        'done',
        'exit $rc',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    expect((await livery.api('/v1/machines', { method: 'POST', json: { macs: [HMAC], hostname: 'h1', ip: '127.0.0.1' } })).status).toBe(201);
  });
  afterAll(() => livery.stop());

  async function imageWith(spec: HealthSpec): Promise<string> {
    const key = JSON.stringify(spec);
    if (!images.has(key)) {
      const bundle = await makeBundle('checked', `v${images.size + 1}`, undefined, { health: spec });
      images.set(key, ((await (await publishBundle(livery, bundle.tar)).json()) as { id: string }).id);
    }
    return images.get(key)!;
  }

  async function bootWith(spec: HealthSpec, during?: () => void) {
    const imageId = await imageWith(spec);
    // As a real boot: the machine is pointed at the image and fetches its script (from its own
    // address), so the phone-home is for the image livery served it.
    expect((await livery.api(`/v1/machines/${HMAC}`, { method: 'PATCH', json: { image: { id: imageId } } })).status).toBe(200);
    expect((await fetch(`${livery.url}/boot/${HMAC}.ipxe`)).status).toBe(200);
    const cmdline = `BOOTIF=01-52-54-00-12-34-57 livery.server=${livery.url} livery.image=${imageId}`;
    const started = Date.now();
    const ran = runAgent(cmdline, (root) => {
      mkdirSync(join(root, 'etc/livery'), { recursive: true });
      writeFileSync(join(root, 'etc/livery/health'), agentHealthConfig(spec));
    }, path());
    during?.();
    const r = await ran;
    const trace = (await (await livery.api(`/v1/machines/${HMAC}/trace`)).json()) as { boots: { imageId: string; stages: { stage: string; detail: { failing?: { check: string; output: string }[] } }[] }[] };
    return { ...r, seconds: (Date.now() - started) / 1000, last: trace.boots.at(-1)!, imageId };
  }

  it('reports healthy when every unit is active and every command succeeds', async () => {
    writeFileSync(join(units, 'ssh.service'), 'active\n');
    const r = await bootWith({ timeoutSeconds: 20, checks: [{ kind: 'unit', value: 'ssh.service' }, { kind: 'command', value: 'test -d /proc/self' }] });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('livery-agent: health: healthy');
    expect(r.last.imageId).toBe(r.imageId);
    expect(r.last.stages.map((s) => s.stage)).toEqual(['script', 'booted', 'healthy']);
    // The agent reported this host's hardware for the boot, from the machine's own address.
    expect(r.stdout).toContain('livery-agent: facts reported');
    const facts = (await (await livery.api(`/v1/machines/${HMAC}/facts`)).json()) as { imageId: string; flat: Record<string, unknown> };
    expect(facts).toMatchObject({ imageId: r.imageId, flat: { 'cpu.threads': cpus().length } });
  });

  it('retries failing checks until they pass within the timeout', async () => {
    const flag = join(scratch, 'ready-later');
    writeFileSync(join(units, 'slow.service'), 'activating\n');
    const r = await bootWith({ timeoutSeconds: 30, checks: [{ kind: 'unit', value: 'slow.service' }, { kind: 'command', value: `test -e ${flag}` }] }, () => {
      setTimeout(() => {
        writeFileSync(flag, '');
        writeFileSync(join(units, 'slow.service'), 'active\n');
      }, 3000);
    });
    expect(r.stdout).toContain('livery-agent: health: healthy');
    expect(r.seconds).toBeGreaterThan(3);
    expect(r.last.stages.map((s) => s.stage)).toEqual(['script', 'booted', 'healthy']);
  });

  it('reports unhealthy after the timeout with each failing check and its last output lines', async () => {
    writeFileSync(join(units, 'ssh.service'), 'active\n');
    writeFileSync(join(units, 'nginx.service'), 'failed\n');
    const noisy = 'for i in $(seq 1 40); do echo "line $i \\"quoted\\" \\\\ back"; done; exit 1';
    const r = await bootWith({
      timeoutSeconds: 3,
      checks: [{ kind: 'unit', value: 'ssh.service' }, { kind: 'unit', value: 'nginx.service' }, { kind: 'command', value: noisy }, { kind: 'command', value: 'true' }],
    });
    expect(r.code, r.stdout).toBe(0);
    expect(r.seconds).toBeGreaterThanOrEqual(3);
    expect(r.stdout).toContain('livery-agent: health check failed: unit nginx.service');
    expect(r.stdout).toContain('livery-agent: health: unhealthy');
    const verdict = r.last.stages.at(-1)!;
    expect(verdict.stage).toBe('unhealthy');
    const failing = verdict.detail.failing!;
    expect(failing.map((f) => f.check)).toEqual(['unit nginx.service', `command ${noisy}`]);
    expect(failing[0]!.output).toBe('failed\nx nginx.service - test unit\n     Active: failed\nnginx.service: bind() failed');
    const lines = failing[1]!.output.split('\n');
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('line 21 "quoted" \\ back');
    expect(lines[19]).toBe('line 40 "quoted" \\ back');
  });
});
