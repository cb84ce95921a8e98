import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/index.js';
import { startLivery, type Livery } from '../../src/daemon/index.js';
import { createLogger } from '../../src/log.js';
import { liveryAsync } from '../helpers/cli.js';
import { tokenSecret } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

describe('the audit log, token use and the request log', () => {
  const dir = tempDir();
  let livery: Livery;
  let text = '';
  let admin = '';
  const api = (path: string, token: string, init: RequestInit & { json?: unknown } = {}) =>
    fetch(livery.url + path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.json === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init.json === undefined ? init.body : JSON.stringify(init.json),
    });
  const logLines = () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    const out = new PassThrough();
    out.on('data', (d) => (text += d));
    const config = resolveConfig({ dataDir: dir.path, http: { listen: '127.0.0.1:0' }, tftp: { enabled: false } });
    livery = await startLivery(config, createLogger('info', 'livery', out));
    admin = livery.bootstrapToken!;
  });
  afterAll(async () => {
    await livery.close();
    dir.cleanup();
  });

  it('lists who changed what, filtered by actor and time, and pages', async () => {
    const created = (await (await api('/v1/tokens', admin, { method: 'POST', json: { name: 'ci', role: 'operator' } })).json()) as { token: string };
    const startedAt = new Date().toISOString();
    for (const [i, host] of ['a1', 'a2', 'a3'].entries()) {
      expect((await api('/v1/machines', created.token, { method: 'POST', json: { macs: [`02:00:00:00:aa:0${i}`], hostname: host } })).status).toBe(201);
    }
    const page1 = (await (await api('/v1/audit?actor=token:ci&limit=2', admin)).json()) as { items: { action: string; target: string; actor: string }[]; next: number };
    expect(page1.items.map((a) => [a.actor, a.action])).toEqual([
      ['token:ci', 'machine.create'],
      ['token:ci', 'machine.create'],
    ]);
    const page2 = (await (await api(`/v1/audit?actor=token:ci&limit=2&before=${page1.next}`, admin)).json()) as { items: unknown[]; next: number | null };
    expect(page2.items).toHaveLength(1);
    expect(page2.next).toBeNull();
    const since = (await (await api(`/v1/audit?since=${encodeURIComponent(startedAt)}`, admin)).json()) as { items: { action: string }[] };
    expect(since.items.map((a) => a.action)).toEqual(['machine.create', 'machine.create', 'machine.create']);

    const bad = await api('/v1/audit?since=yesterday', admin);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/since/);
    // A reader may not read it.
    const reader = (await (await api('/v1/tokens', admin, { method: 'POST', json: { name: 'viewer', role: 'reader' } })).json()) as { token: string };
    expect((await api('/v1/audit', reader.token)).status).toBe(403);

    const cli = await liveryAsync(['audit', '--since', '1h', '--actor', 'token:ci', '--json'], { LIVERY_URL: livery.url, LIVERY_TOKEN: admin });
    expect(cli.code, cli.stderr).toBe(0);
    expect((JSON.parse(cli.stdout) as { target: string }[]).map((a) => a.target)).toHaveLength(3);
    const badCli = await liveryAsync(['audit', '--since', 'someday'], { LIVERY_URL: livery.url, LIVERY_TOKEN: admin });
    expect(badCli.code).toBe(1);
    expect(badCli.stderr).toContain("--since: expected an ISO time");
  });

  it('records when a token was last used', async () => {
    const created = (await (await api('/v1/tokens', admin, { method: 'POST', json: { name: 'fresh', role: 'reader' } })).json()) as { id: string; token: string };
    const before = (await (await api('/v1/tokens', admin)).json()) as { items: { id: string; lastUsedAt: string | null }[] };
    expect(before.items.find((t) => t.id === created.id)!.lastUsedAt).toBeNull();
    expect((await api('/v1/machines', created.token)).status).toBe(200);
    const after = (await (await api('/v1/tokens', admin)).json()) as { items: { id: string; lastUsedAt: string | null }[] };
    expect(Date.parse(after.items.find((t) => t.id === created.id)!.lastUsedAt!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('logs writes and errors with the token id and name, ISO times and level names, never the secret', async () => {
    const created = (await (await api('/v1/tokens', admin, { method: 'POST', json: { name: 'logged', role: 'operator' } })).json()) as { id: string; token: string };
    expect((await api('/v1/machines', created.token, { method: 'POST', json: { macs: ['02:00:00:00:bb:01'], hostname: 'logged1' } })).status).toBe(201);
    expect((await api('/v1/machines/nope-such', created.token)).status).toBe(404);
    expect((await api('/v1/machines', created.token)).status).toBe(200);
    await new Promise((r) => setImmediate(r));
    const requests = logLines().filter((l) => l.msg === 'request' && (l.token as { id?: string } | null)?.id === created.id);
    expect(requests.map((l) => [l.method, l.status])).toEqual([
      ['POST', 201],
      ['GET', 404],
    ]);
    expect(requests[0]).toMatchObject({ level: 'info', route: '/v1/machines', token: { id: created.id, name: 'logged' } });
    expect(new Date(requests[0]!.time as string).toISOString()).toBe(requests[0]!.time);
    expect(text).not.toContain(tokenSecret(created.token));
  });
});
