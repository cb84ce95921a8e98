import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { livery, serveProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
let server: Awaited<ReturnType<typeof serveProcess>>;
let env: Record<string, string>;

beforeAll(async () => {
  server = await serveProcess(['--data-dir', join(dir.path, 'var'), '--http-listen', '127.0.0.1:0', '--no-tftp']);
  env = { LIVERY_URL: server.url, LIVERY_TOKEN: server.token };
});
afterAll(async () => {
  await server?.stop();
  dir.cleanup();
});

describe('livery CLI (built binary, real server)', () => {
  it('adds a machine and lists it with the MAC normalised', () => {
    const add = livery(['machine', 'add', '--mac', '52-54-00-12-34-56', '--hostname', 'node1', '--ip', '127.0.0.1', '--label', 'rack=r1'], env);
    // No subnet holds its address yet: stored, with a warning on stderr (stdout stays the record).
    expect(add.stderr).toBe('warning: ip: 127.0.0.1 is in no subnet livery serves; it is reserved for nothing until a subnet contains it\n');
    expect(add.code).toBe(0);
    const list = livery(['machine', 'list'], env);
    expect(list.stdout).toMatch(/^ID\s+MAC\s+HOSTNAME\s+IP\s+STATE/);
    expect(list.stdout).toMatch(/52:54:00:12:34:56\s+node1\s+127\.0\.0\.1\s+registered/);
    const json = JSON.parse(livery(['machine', 'list', '--json'], env).stdout);
    expect(json).toEqual([expect.objectContaining({ hostname: 'node1', macs: ['52:54:00:12:34:56'] })]);
    expect(livery(['machine', 'show', '5254.0012.3456', '--json'], env).stdout).toContain('"node1"');
  });

  it('imports a 1,000-row CSV, then again with no change', () => {
    const lines = ['mac,hostname,ip,site,labels'];
    for (let i = 0; i < 1000; i++) {
      const mac = `0a:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      lines.push(`${mac},n${i},10.2.${i >> 7}.${(i & 127) + 1},ams,rack=r${i % 10}`);
    }
    const csv = join(dir.path, 'machines.csv');
    writeFileSync(csv, lines.join('\n'));
    expect(livery(['machine', 'import', csv], env).stdout).toContain('created 1000, updated 0, unchanged 0');
    expect(livery(['machine', 'import', csv], env).stdout).toContain('created 0, updated 0, unchanged 1000');
    expect(JSON.parse(livery(['machine', 'list', '--json', '--label', 'rack=r3'], env).stdout)).toHaveLength(100);
    expect(JSON.parse(livery(['machine', 'list', '--json'], env).stdout)).toHaveLength(1001);
  });

  it('exits non-zero with the server message', () => {
    const dup = livery(['machine', 'add', '--mac', '52:54:00:12:34:56'], env);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('409 macs: MAC 52:54:00:12:34:56 already belongs to machine node1');
    const noToken = livery(['machine', 'add', '--mac', '52:54:00:12:34:57'], { ...env, LIVERY_TOKEN: '' });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('401 missing bearer token');
    const down = livery(['machine', 'list', '--url', 'http://127.0.0.1:1'], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach livery at http://127.0.0.1:1');
  });

  it('manages subnets and tokens, including an offline bootstrap token', () => {
    expect(livery(['subnet', 'add', '--cidr', '10.0.0.0/24', '--gateway', '10.0.0.1', '--pool', '10.0.0.100-10.0.0.199'], env).code).toBe(0);
    expect(livery(['subnet', 'list'], env).stdout).toMatch(/10\.0\.0\.0\/24\s+10\.0\.0\.1\s+10\.0\.0\.100-10\.0\.0\.199\s+discover/);
    const offline = livery(['token', 'create', '--role', 'reader', '--name', 'offline', '--data-dir', join(dir.path, 'var')]);
    expect(offline.code).toBe(0);
    const t = offline.stdout.trim();
    expect(livery(['machine', 'list', '--json'], { ...env, LIVERY_TOKEN: t }).code).toBe(0);
    const denied = livery(['machine', 'rm', 'node1'], { ...env, LIVERY_TOKEN: t });
    expect(denied.stderr).toContain('403');
    expect(livery(['status', '--json'], env).stdout).toContain('"status": "ok"');
  });

  it('explains a decision and traces boots', async () => {
    const explain = livery(['machine', 'explain', 'node1', '--firmware', 'bios-pxe'], env);
    expect(explain.code).toBe(0);
    expect(explain.stdout).toMatch(/action\s+wait/);
    expect(explain.stdout).toContain('no image selected for this machine');
    expect(explain.stdout).toContain('TFTP undionly.kpxe');
    expect(explain.stdout).toContain('#!ipxe');
    expect(livery(['machine', 'trace', 'node1'], env).stdout).toContain('no boots recorded for node1');
    await fetch(`${server.url}/boot/52:54:00:12:34:56.ipxe`);
    const trace = livery(['machine', 'trace', 'node1'], env);
    expect(trace.stdout).toMatch(/stopped before kernel/);
    expect(trace.stdout).toMatch(/script\s+0\.0\s+ipxe-script/);
    expect(trace.stdout).toMatch(/^last: client fetched its iPXE script \(ipxe\/wait\.ipxe\); no kernel download followed$/m);
  });

  it('refuses a bad config with the key named', () => {
    const cfg = join(dir.path, 'bad.toml');
    writeFileSync(cfg, '[tftp]\nmaxBlksize = 1\n');
    const r = livery(['serve', '--config', cfg, '--data-dir', join(dir.path, 'v2')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('tftp.maxBlksize');
  });

  it('set --label and --var change only the keys given; --unlabel and --unvar remove one', async () => {
    const add = livery(['machine', 'add', '--mac', '52:54:00:00:0e:01', '--hostname', 'edit1', '--label', 'rack=r1', '--label', 'role=kvm', '--var', 'tz=UTC'], env);
    expect(add.code, add.stderr).toBe(0);
    const set = livery(['machine', 'set', 'edit1', '--label', 'rack=r2', '--label', 'canary=yes', '--var', 'ntp=pool'], env);
    expect(set.code, set.stderr).toBe(0);
    const shown = () => JSON.parse(livery(['machine', 'show', 'edit1', '--json'], env).stdout) as { labels: Record<string, string>; vars: Record<string, string> };
    expect(shown()).toMatchObject({ labels: { rack: 'r2', role: 'kvm', canary: 'yes' }, vars: { tz: 'UTC', ntp: 'pool' } });
    expect(livery(['machine', 'set', 'edit1', '--unlabel', 'canary', '--unvar', 'tz'], env).code).toBe(0);
    expect(shown()).toEqual(expect.objectContaining({ labels: { rack: 'r2', role: 'kvm' }, vars: { ntp: 'pool' } }));
    // Through the API, the whole set and some keys at once are refused, naming both fields.
    const both = await fetch(`${server.url}/v1/machines/edit1`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ labels: { a: '1' }, labelChanges: { b: '2' } }),
    });
    expect(both.status).toBe(400);
    expect(await both.text()).toContain('labelChanges: give labels (the whole set) or labelChanges (some keys), not both');
  });

  it('machine rm --purge and subnet rm ask first: without a terminal they need --yes', () => {
    expect(livery(['subnet', 'add', '--name', 'doomed', '--cidr', '10.66.0.0/24'], env).code).toBe(0);
    expect(livery(['machine', 'add', '--mac', '52:54:00:00:0d:01', '--hostname', 'doomed1', '--subnet', 'doomed'], env).code).toBe(0);
    const purge = livery(['machine', 'rm', 'doomed1', '--purge'], env);
    expect(purge.code).toBe(1);
    expect(purge.stderr).toMatch(/delete machine doomed1 \(id \d+\) and its history: refused without --yes/);
    const subnet = livery(['subnet', 'rm', 'doomed'], env);
    expect(subnet.code).toBe(1);
    expect(subnet.stderr).toContain('delete subnet doomed (10.66.0.0/24) and its leases: refused without --yes');
    expect(livery(['machine', 'show', 'doomed1'], env).code).toBe(0);
    expect(livery(['machine', 'rm', 'doomed1', '--purge', '--yes'], env).stdout).toContain('purged doomed1');
    expect(livery(['subnet', 'rm', 'doomed', '--yes'], env).stdout).toContain('deleted subnet doomed');
    expect(livery(['machine', 'show', 'doomed1'], env).code).toBe(1);
  });
});
