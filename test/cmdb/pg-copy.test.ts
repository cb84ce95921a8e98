import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb, openCmdbAt, type SqlCmdb } from '../../src/cmdb/index.js';
import { manifestFor, randomArtifacts } from '../helpers/bundle.js';
import { livery, serveUntilListening } from '../helpers/cli.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { createDatabase } from '../helpers/test-database.js';
import { tempDir } from '../helpers/tmp.js';

const IMAGE = '3c6e0b8a-7d2f-4b1a-9e5c-1f2a3b4c5d6e';

/** What an operator sees of a CMDB, read through the stores: equal on both engines after a copy. */
function view(c: SqlCmdb) {
  return {
    subnets: c.subnets.list(),
    machines: c.machines.list({ limit: 10_000 }),
    images: c.images.list(),
    channels: c.images.channels(),
    history: c.images.history('web', 'stable'),
    leases: c.leases.list(),
    tokens: c.tokens.list(),
    events: c.events.recent(100),
    audit: c.audit.list({ limit: 100 }),
  };
}

describe('livery db copy: a SQLite CMDB moved to PostgreSQL, row for row', () => {
  const dir = tempDir();
  const sqlitePath = join(dir.path, 'var', 'livery.db');
  let pg: TestPostgres;
  let target: { url: string; password: string };
  let token: string;
  let before: ReturnType<typeof view>;

  beforeAll(async () => {
    pg = await startPostgres();
    target = createDatabase(pg);
    const c = openCmdb(sqlitePath);
    const lan = c.subnets.create({ name: 'lan', cidr: '10.7.0.0/24', gateway: '10.7.0.1', pools: [{ start: '10.7.0.100', end: '10.7.0.150' }] });
    c.images.insert(IMAGE, manifestFor('web', 'v1', randomArtifacts({ rootfs: 1024 })));
    c.images.promote(IMAGE, 'stable', 'test');
    c.tx(() => c.imageNodes.markReady(IMAGE, 'node-a'));
    for (let i = 0; i < 300; i++) {
      c.change('test', 'machine.create', `n${i}`, () =>
        c.machines.create({ macs: [`02:00:00:07:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`], hostname: `n${i}`, labels: { rack: `r${i % 4}` }, image: { name: 'web' } }),
      );
    }
    c.leases.claim({ ip: '10.7.0.100', mac: '02:00:00:07:00:00', subnetId: lan.id, state: 'bound', expiresAt: Date.now() + 3_600_000, clientId: null, hostname: 'n0' }, Date.now(), true);
    c.events.add({ type: 'dhcp-ack', mac: '02:00:00:07:00:00', detail: { ip: '10.7.0.100' } });
    token = c.tokens.create('ops', 'admin').token;
    before = view(c);
    c.close();
  }, 120_000);

  afterAll(async () => {
    await pg?.stop();
    dir.cleanup();
  });

  it('copies every table, checks each on both sides, and the copy reads as the original', () => {
    const r = livery(['db', 'copy', '--from', `sqlite:${sqlitePath}`, '--to', target.url, '--password-file', pg.passwordFile]);
    expect(r.stderr).toMatch(/copied and checked \d+ rows/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^machines +300 /m);
    expect(r.stdout).toMatch(/^machine_macs +300 /m);
    expect(r.stdout).toMatch(/^image_nodes +1 /m);
    const c = openCmdbAt({ engine: 'postgres', ...target });
    try {
      expect(view(c)).toEqual(before);
      expect(c.tokens.verify(token)?.name).toBe('ops');
      // Ids go on after the copied ones.
      const next = c.machines.create({ macs: ['02:00:00:07:ff:ff'], hostname: 'after-copy' });
      expect(next.id).toBe(Math.max(...before.machines.map((m) => m.id)) + 1);
    } finally {
      c.close();
    }
  });

  it('refuses a target that is not empty, changing nothing', () => {
    const r = livery(['db', 'copy', '--from', `sqlite:${sqlitePath}`, '--to', target.url, '--password-file', pg.passwordFile]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the target database is not empty: subnets holds 1 rows/);
    const c = openCmdbAt({ engine: 'postgres', ...target });
    try {
      expect(c.machines.count()).toBe(301);
    } finally {
      c.close();
    }
  });

  it('serves from the copy: `serve --database`, the password from the environment', async () => {
    process.env.LIVERY_DATABASE_PASSWORD = pg.password;
    let served: Awaited<ReturnType<typeof serveUntilListening>> | undefined;
    try {
      served = await serveUntilListening(['--data-dir', join(dir.path, 'node'), '--database', target.url, '--http-listen', '127.0.0.1:0', '--no-tftp']);
    } finally {
      delete process.env.LIVERY_DATABASE_PASSWORD;
    }
    try {
      const res = await fetch(`${served.url}/v1/machines/n7`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ hostname: 'n7', labels: { rack: 'r3' } });
      expect(served.output()).not.toContain(pg.password);
    } finally {
      await served.stop();
    }
  });

  it('refuses a password written into the URL, without printing it', () => {
    const url = new URL(target.url);
    url.password = 'hunter2-secret';
    const r = livery(['db', 'migrate', '--database', url.toString(), '--data-dir', join(dir.path, 'node')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('database.url: holds a password');
    expect(r.stderr + r.stdout).not.toContain('hunter2-secret');
  });
});
