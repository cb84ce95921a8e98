import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MachineCache, openCmdb } from '../../src/cmdb/index.js';
import { CHECK_INTERVAL_MS } from '../../src/cmdb/machine-cache.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { CLI } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

/** Image assignment by selector: the decision's precedence, explain, the API and CLI, and the DHCP cache. */
describe('image assignment by selector', () => {
  let s: TestServer;
  const ids: Record<string, string> = {};
  const json = async (r: Response) => ({ status: r.status, body: (await r.json()) as Record<string, any> });
  const explain = async (ref: string) => (await json(await s.api(`/v1/machines/${ref}/explain?subnet=lab`))).body as { action: string; image: { name: string; id: string } | null; reasons: string[] };
  const cli = async (...args: string[]) => {
    try {
      return { code: 0, ...(await promisify(execFile)(process.execPath, [CLI, '--url', s.url, '--token', s.token, ...args], { encoding: 'utf8', timeout: 60_000 })) };
    } catch (err) {
      return err as { code: number; stdout: string; stderr: string };
    }
  };

  beforeAll(async () => {
    s = await startTestServer();
    for (const name of ['kvm-host', 'gpu-host', 'base', 'pinned']) {
      const { tar } = await makeBundle(name, '1.0');
      const res = await publishBundle(s, tar, '?channel=stable');
      expect(res.status).toBe(201);
      ids[name] = (await res.json()).id;
    }
    await s.api('/v1/subnets', { method: 'POST', json: { name: 'lab', cidr: '10.50.0.0/24', defaultImage: { name: 'base', channel: 'stable' } } });
    for (const [mac, hostname, labels, image] of [
      ['02:00:00:00:50:01', 'k1', { role: 'kvm' }, undefined],
      ['02:00:00:00:50:02', 'k2', { role: 'kvm' }, { name: 'gpu-host' }],
      ['02:00:00:00:50:03', 'k3', { role: 'kvm' }, { id: 'PIN' }],
      ['02:00:00:00:50:04', 'g1', { role: 'gpu', rack: 'r7' }, undefined],
      ['02:00:00:00:50:05', 'x1', { role: 'storage' }, undefined],
    ] as const) {
      const img = image && 'id' in image ? { id: ids.pinned } : image;
      const r = await s.api('/v1/machines', { method: 'POST', json: { macs: [mac], hostname, labels, site: 'par1', ...(img ? { image: img } : {}) } });
      expect(r.status).toBe(201);
    }
  });
  afterAll(async () => s?.stop());

  it('adds, lists and removes rules over REST and the CLI, refusing bad ones naming the field', async () => {
    const r = await cli('assign', 'add', '--selector', 'site=par1, role in (kvm,gpu)', '--image', 'kvm-host@stable', '--priority', '10');
    expect(r.stdout).toBe('assignment #1: role in (gpu,kvm),site=par1 -> kvm-host@stable (priority 10)\n');
    const gpu = await json(await s.api('/v1/assignments', { method: 'POST', json: { selector: 'role=gpu', image: 'gpu-host' } }));
    expect(gpu).toMatchObject({ status: 201, body: { id: 2, selector: 'role=gpu', image: { name: 'gpu-host', channel: 'stable' }, priority: 0 } });
    expect((await json(await s.api('/v1/assignments', { method: 'POST', json: { selector: 'role=', image: 'x' } }))).body).toEqual({
      error: 'selector: invalid value "" for role (1-256 of letters, digits, . _ : / + -)',
      field: 'selector',
    });
    expect((await json(await s.api('/v1/assignments', { method: 'POST', json: { selector: 'role=gpu', image: 'Bad Name' } }))).status).toBe(400);
    const list = await cli('assign', 'list');
    expect(list.stdout.split('\n')[1]).toMatch(/^1\s+10\s+role in \(gpu,kvm\),site=par1\s+kvm-host@stable/);
    const reader = (await json(await s.api('/v1/tokens', { method: 'POST', json: { name: 'ro', role: 'reader' } }))).body.token;
    expect((await s.api('/v1/assignments', { token: reader })).status).toBe(200);
    expect((await s.api('/v1/assignments', { method: 'POST', token: reader, json: { selector: 'role=x', image: 'x' } })).status).toBe(403);
  });

  it('precedence: the pin, then the machine\'s own image, then the best matching rule, then the subnet default', async () => {
    expect((await explain('k3')).image!.id).toBe(ids.pinned);
    const own = await explain('k2');
    expect(own.image!.name).toBe('gpu-host');
    expect(own.reasons).toContain("rule #1 (role in (gpu,kvm),site=par1 -> kvm-host@stable, priority 10) also matches, but the machine's own image comes first");
    const byRule = await explain('k1');
    expect(byRule).toMatchObject({ action: 'boot', image: { name: 'kvm-host' } });
    expect(byRule.reasons).toContain('rule #1 (role in (gpu,kvm),site=par1 -> kvm-host@stable, priority 10) matches: boot kvm-host@stable');
    expect(byRule.reasons).toContain('rule #2 (role=gpu -> gpu-host@stable, priority 0) not used: rule #1 (role in (gpu,kvm),site=par1 -> kvm-host@stable, priority 10) comes first (higher priority)');
    const fallback = await explain('x1');
    expect(fallback.image!.name).toBe('base');
    expect(fallback.reasons).toContain('rule #1 (role in (gpu,kvm),site=par1 -> kvm-host@stable, priority 10) does not match: role is storage, not one of gpu, kvm');
    expect(fallback.reasons).toContain('rule #2 (role=gpu -> gpu-host@stable, priority 0) does not match: role is storage, not gpu');
    expect(fallback.reasons).toContain("no image of its own and no assignment rule matches: subnet lab's default base@stable");
  });

  it('ties in priority are broken, not refused: more terms first, then the older rule', async () => {
    // Same priority as #1 and as specific (two terms): #1, older, keeps winning for g1.
    const tie = (await json(await s.api('/v1/assignments', { method: 'POST', json: { selector: 'role=gpu,site=par1', image: 'gpu-host', priority: 10 } }))).body;
    let e = await explain('g1');
    expect(e.image!.name).toBe('kvm-host');
    expect(e.reasons).toContain(`rule #${tie.id} (role=gpu,site=par1 -> gpu-host@stable, priority 10) not used: rule #1 (role in (gpu,kvm),site=par1 -> kvm-host@stable, priority 10) comes first (same priority and terms, older rule)`);
    // A third term makes the newer rule the more specific one.
    const specific = (await json(await s.api('/v1/assignments', { method: 'POST', json: { selector: 'rack=r7,role=gpu,site=par1', image: 'gpu-host', priority: 10 } }))).body;
    e = await explain('g1');
    expect(e.image!.name).toBe('gpu-host');
    expect(e.reasons).toContain(`rule #1 (role in (gpu,kvm),site=par1 -> kvm-host@stable, priority 10) not used: rule #${specific.id} (rack=r7,role=gpu,site=par1 -> gpu-host@stable, priority 10) comes first (same priority, more terms)`);
    const rm = await cli('assign', 'rm', String(specific.id));
    expect(rm.stdout).toBe(`removed assignment #${specific.id} (rack=r7,role=gpu,site=par1)\n`);
    expect((await explain('g1')).image!.name).toBe('kvm-host');
    expect((await s.api('/v1/assignments/999', { method: 'DELETE' })).status).toBe(404);
  });

  it('the boot script follows the rules: the HTTP boot path decides with them', async () => {
    const script = await (await fetch(`${s.url}/boot/02:00:00:00:50:01.ipxe`)).text();
    expect(script).toContain(`livery.image=${ids['kvm-host']}`);
  });
});

describe('the DHCP machine cache and assignment rules', () => {
  it('keeps the rules and drops them when any connection changes one', async () => {
    const dir = tempDir();
    const server = openCmdb(join(dir.path, 'livery.db'));
    const operator = openCmdb(join(dir.path, 'livery.db'));
    try {
      const cache = new MachineCache(server.machines, server.assignments);
      expect(cache.rules()).toEqual([]);
      operator.assignments.add({ selector: 'role=kvm', image: 'kvm-host' });
      await new Promise((r) => setTimeout(r, CHECK_INTERVAL_MS + 1));
      expect(cache.rules().map((r) => r.selector)).toEqual(['role=kvm']);
      // Cached: the same array until something changes.
      expect(cache.rules()).toBe(cache.rules());
      operator.assignments.remove(1);
      await new Promise((r) => setTimeout(r, CHECK_INTERVAL_MS + 1));
      expect(cache.rules()).toEqual([]);
    } finally {
      server.close();
      operator.close();
      dir.cleanup();
    }
  });
});
