import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

/**
 * Runs the real agent script (the one every image carries) against a fake livery server on
 * 127.0.0.1. File writes go under a scratch root; the hostname change happens in a UTS
 * namespace of its own (unshare --uts), so the build machine's hostname is never touched.
 */
const AGENT = resolve('src/builder/assets/livery-agent.sh');
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
async function runAgent(cmdline: string, prepare?: (root: string) => void): Promise<{ code: number; stdout: string; hostname: string; root: string }> {
  const root = join(scratch, `root${++runs}`);
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'run/livery'), { recursive: true });
  prepare?.(root);
  writeFileSync(join(root, 'cmdline'), `${cmdline}\n`);
  const script = 'sh "$0"; rc=$?; echo "UTS-HOSTNAME=$(hostname)"; exit $rc';
  return new Promise((done) => {
    execFile(
      'unshare',
      ['--uts', 'sh', '-c', script, AGENT],
      { env: { PATH: process.env.PATH!, LIVERY_AGENT_CMDLINE: join(root, 'cmdline'), LIVERY_AGENT_ROOT: root }, timeout: 60_000 },
      (err, stdout) => {
        const code = err ? ((err as { code?: number }).code ?? -1) : 0;
        const hostname = /UTS-HOSTNAME=(.*)/.exec(stdout)?.[1] ?? '';
        done({ code, stdout, hostname, root });
      },
    );
  });
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

    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`GET /v1/metadata/${MAC}?format=env`, `POST /v1/machines/${MAC}/booted`]);
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
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`GET /v1/metadata/${MAC}?format=env`, `POST /v1/machines/${MAC}/booted`]);
    expect((JSON.parse(seen[1]!.body) as { imageId: string }).imageId).toBe(IMAGE);
  });

  it('still reports the boot when the server has no metadata for the machine', async () => {
    metadataStatus = 404;
    const r = await runAgent(cmdline());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`could not fetch metadata from http://127.0.0.1:${port} for ${MAC}`);
    expect(seen.map((s) => s.method)).toEqual(['GET', 'POST']);
    expect(existsSync(join(r.root, 'etc/hostname'))).toBe(false);
    expect(r.stdout).toMatch(new RegExp(`booted image ${IMAGE} as \\S+`));
  });

  it('fails visibly when the server refuses the boot report', async () => {
    metadataBody = "LIVERY_HOSTNAME='node2'\n";
    bootedStatus = 400;
    const r = await runAgent(cmdline());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`livery-agent: could not report the boot to http://127.0.0.1:${port}`);
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
