/**
 * Two livery nodes on one PostgreSQL CMDB (issue #28): each sees the other, one drives
 * rollouts and the other takes over when it goes, an event one records reaches the other's
 * event stream, and a node name another live node holds is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Livery } from '../../src/daemon/index.js';
import { startPgNode } from '../helpers/pg-node.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { apiClient } from '../helpers/server.js';
import { createDatabase } from '../helpers/test-database.js';
import { tempDir } from '../helpers/tmp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface NodeView {
  name: string;
  alive: boolean;
  roles: string[];
}

describe('several livery nodes on one PostgreSQL CMDB', () => {
  let pg: TestPostgres;
  let database: { url: string };
  const dirs: ReturnType<typeof tempDir>[] = [];
  const nodes: Livery[] = [];

  const start = async (name: string): Promise<Livery> => {
    const dir = tempDir();
    dirs.push(dir);
    const livery = await startPgNode(pg, database.url, name, dir.path);
    nodes.push(livery);
    return livery;
  };

  let a: Livery;
  let b: Livery;
  let token: string;
  const api = (node: Livery) => apiClient(node.url, token);
  const listNodes = async (node: Livery) => ((await (await api(node)('/v1/nodes')).json()) as { items: NodeView[] }).items;

  beforeAll(async () => {
    pg = await startPostgres();
    database = createDatabase(pg);
    a = await start('node-a');
    token = a.bootstrapToken!;
    b = await start('node-b');
  }, 120_000);

  afterAll(async () => {
    for (const n of nodes.reverse()) await n.close().catch(() => undefined);
    await pg?.stop();
    for (const d of dirs) d.cleanup();
  });

  it('each node lists both, alive; the first one started drives rollouts', async () => {
    expect(b.bootstrapToken).toBeNull();
    for (const node of [a, b]) {
      expect(await listNodes(node)).toEqual([
        expect.objectContaining({ name: 'node-a', alive: true, roles: ['rollouts'] }),
        expect.objectContaining({ name: 'node-b', alive: true, roles: [] }),
      ]);
    }
  });

  it('an edit through one node is what the other serves, and its event reaches the other\'s stream', async () => {
    const mac = '02:00:00:28:00:01';
    expect((await api(a)('/v1/machines', { method: 'POST', json: { macs: [mac], hostname: 'shared-1' } })).status).toBe(201);
    expect(await (await api(b)(`/v1/machines/${mac}`)).json()).toMatchObject({ hostname: 'shared-1' });
    const stream = await api(b)(`/v1/events?type=node-test`);
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    a.cmdb.events.add({ type: 'node-test', mac, detail: { from: 'node-a' } });
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes('node-a') && Date.now() < deadline) {
      const { value, done } = await Promise.race([reader.read(), sleep(deadline - Date.now()).then(() => ({ value: undefined, done: true }))]);
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    expect(text).toMatch(/"type":"node-test"/);
    expect(text).toContain('"from":"node-a"');
  });

  it('refuses a node name another live node holds', async () => {
    await expect(start('node-b')).rejects.toThrow(/node name node-b is taken by a node alive \d+ s ago/);
  });

  it('when the rollout node stops, the other takes its role; the stopped one shows as down', async () => {
    await a.close();
    nodes.splice(nodes.indexOf(a), 1);
    let seen: NodeView[] = [];
    for (let i = 0; i < 100; i++) {
      seen = await listNodes(b);
      if (seen.find((n) => n.name === 'node-b')?.roles.includes('rollouts') && seen.find((n) => n.name === 'node-a')?.alive === false) break;
      await sleep(100);
    }
    expect(seen).toEqual([
      expect.objectContaining({ name: 'node-a', alive: false, roles: [] }),
      expect.objectContaining({ name: 'node-b', alive: true, roles: ['rollouts'] }),
    ]);
  });

  it('while PostgreSQL is down, requests fail with 503 naming it; once it is back they work again', async () => {
    await pg.halt();
    try {
      const down = await api(b)('/v1/machines/shared-1');
      expect(down.status).toBe(503);
      expect(((await down.json()) as { error: string }).error).toMatch(/^the CMDB cannot be reached \(PostgreSQL at 127\.0\.0\.1:\d+: /);
      expect((await api(b)('/healthz', { token: null })).status).toBe(503);
    } finally {
      await pg.restart();
    }
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await api(b)('/v1/machines/shared-1')).status;
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
  });
});
