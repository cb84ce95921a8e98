import { execFileSync } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpTables } from '../helpers/db-snapshot.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { selfSignedCert } from '../helpers/tls-cert.js';
import { tempDir } from '../helpers/tmp.js';

let s: TestServer;
const tokens: Record<string, string> = {};
let imageId = '';

beforeAll(async () => {
  s = await startTestServer({ catalog: { maxBundleBytes: 1_000_000 } });
  for (const role of ['operator', 'publisher', 'reader'] as const) {
    tokens[role] = (await (await s.api('/v1/tokens', { method: 'POST', json: { name: role, role } })).json()).token;
  }
  tokens.admin = s.token;
  const { tar } = await makeBundle('sec', '1');
  imageId = (await (await publishBundle(s, tar)).json()).id;
  await s.api('/v1/subnets', { method: 'POST', json: { cidr: '10.5.0.0/24', name: 'sec' } });
  await s.api('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:00:aa:01'], hostname: 'sec1', ip: '10.5.0.10' } });
});
afterAll(() => s.stop());

/** Every write endpoint with a request that the right role would get accepted (or a 4xx past auth). */
const WRITES: { method: string; path: () => string; role: 'admin' | 'operator' | 'publisher'; json?: unknown; tar?: boolean }[] = [
  { method: 'POST', path: () => '/v1/machines', role: 'operator', json: { macs: ['52:54:00:00:bb:01'] } },
  { method: 'PATCH', path: () => '/v1/machines/sec1', role: 'operator', json: { site: 'x' } },
  { method: 'DELETE', path: () => '/v1/machines/52:54:00:00:bb:01', role: 'operator' },
  { method: 'POST', path: () => '/v1/machines/import', role: 'operator', json: [] },
  { method: 'POST', path: () => '/v1/subnets', role: 'operator', json: { cidr: '10.6.0.0/24' } },
  { method: 'PATCH', path: () => '/v1/subnets/sec', role: 'operator', json: { leaseSeconds: 600 } },
  { method: 'DELETE', path: () => '/v1/subnets/10.6.0.0%2F24', role: 'operator' },
  { method: 'POST', path: () => '/v1/images', role: 'publisher', tar: true },
  { method: 'POST', path: () => `/v1/images/${imageId}/promote`, role: 'publisher', json: { channel: 'testing' } },
  { method: 'POST', path: () => '/v1/channels/sec/testing/rollback', role: 'publisher' },
  { method: 'DELETE', path: () => '/v1/images/00000000-0000-4000-8000-000000000000', role: 'publisher' },
  { method: 'POST', path: () => '/v1/images/gc', role: 'publisher' },
  { method: 'POST', path: () => '/v1/tokens', role: 'admin', json: { name: 'x', role: 'reader' } },
  { method: 'DELETE', path: () => '/v1/tokens/000000000000', role: 'admin' },
];

const GRANTED: Record<string, string[]> = { admin: ['admin', 'operator', 'publisher'], operator: ['operator'], publisher: ['publisher'], reader: [] };

describe('role matrix', () => {
  for (const w of WRITES) {
    for (const role of ['admin', 'operator', 'publisher', 'reader'] as const) {
      const allowed = GRANTED[role]!.includes(w.role);
      it(`${role} ${allowed ? 'may' : 'may not'} ${w.method} ${w.path()}`, async () => {
        const before = allowed ? null : dumpTables(s.livery.cmdb);
        const init: Parameters<TestServer['api']>[1] = { method: w.method, token: tokens[role] };
        if (w.json !== undefined) init.json = w.json;
        if (w.tar) {
          init.body = (await makeBundle('sec', `m-${role}`)).tar;
          init.headers = { 'content-type': 'application/x-tar' };
        }
        const res = await s.api(w.path(), init);
        if (allowed) expect(res.status).not.toBe(403);
        else {
          expect(res.status).toBe(403);
          expect((await res.json()).error).toContain(`needs the ${w.role} role`);
          expect(dumpTables(s.livery.cmdb)).toEqual(before);
        }
      });
    }
  }

  it('writes an audit entry for every accepted write', async () => {
    const before = s.livery.cmdb.audit.list({ limit: 1000 }).length;
    await s.api('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:00:cc:01'] } });
    await s.api('/v1/machines/52:54:00:00:cc:01', { method: 'PATCH', json: { site: 'audited' } });
    await s.api(`/v1/images/${imageId}/promote`, { method: 'POST', json: { channel: 'audit' } });
    const entries = s.livery.cmdb.audit.list({ limit: 1000 });
    expect(entries.length - before).toBe(3);
    expect(entries.slice(0, 3).map((e) => e.action)).toEqual(['image.promote', 'machine.update', 'machine.create']);
  });
});

describe('hostile HTTP input', () => {
  it('refuses oversized bodies, wrong content types and bad JSON, changing nothing', async () => {
    const before = dumpTables(s.livery.cmdb);
    const big = await s.api('/v1/machines', { method: 'POST', body: JSON.stringify({ macs: ['x'.repeat(20 * 1024 * 1024)] }), headers: { 'content-type': 'application/json' } });
    expect(big.status).toBe(413);
    const xml = await s.api('/v1/machines', { method: 'POST', body: '<machine/>', headers: { 'content-type': 'application/xml' } });
    expect(xml.status).toBe(415);
    const broken = await s.api('/v1/machines', { method: 'POST', body: '{"macs": [}', headers: { 'content-type': 'application/json' } });
    expect(broken.status).toBe(400);
    const deep = await s.api('/v1/machines', { method: 'POST', body: '['.repeat(100_000) + ']'.repeat(100_000), headers: { 'content-type': 'application/json' } });
    expect(deep.status).toBe(400);
    const proto = await s.api('/v1/machines', { method: 'POST', body: '{"macs":["52:54:00:00:dd:01"],"__proto__":{"admin":true}}', headers: { 'content-type': 'application/json' } });
    expect(proto.status).toBe(400);
    const tooLarge = await s.api('/v1/images', { method: 'POST', body: Buffer.alloc(2_000_000), headers: { 'content-type': 'application/x-tar' } });
    expect(tooLarge.status).toBeGreaterThanOrEqual(400);
    expect(tooLarge.status).toBeLessThan(500);
    expect(dumpTables(s.livery.cmdb)).toEqual(before);
  });

  it('answers huge headers with 431 and stays up', async () => {
    const res = await fetch(`${s.url}/healthz`, { headers: { 'x-junk': 'a'.repeat(64 * 1024) } }).catch((e) => e as Error);
    if (res instanceof Response) expect(res.status).toBe(431);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  });

  it('refuses path traversal in every path parameter', async () => {
    const probes = [
      '/images/..%2f..%2fetc/passwd',
      `/images/${imageId}/..%2f..%2flivery.db`,
      `/images/${imageId}/%2e%2e%2fadmin.token`,
      '/loaders/..%2f..%2f..%2fetc%2fpasswd',
      '/boot/..%2f..%2fetc%2fpasswd.ipxe',
      '/v1/metadata/..%2f..%2fadmin.token',
      '/cloud-init/..%2fadmin.token/meta-data',
      '/v1/machines/..%2f..%2fadmin.token',
    ];
    for (const p of probes) {
      const res = await s.api(p);
      expect([400, 404]).toContain(res.status);
      const text = await res.text();
      expect(text).not.toContain('root:x:0:0');
      expect(text).not.toContain('lvy_');
    }
  });

  it('times out a request whose body never finishes, and keeps serving others', async () => {
    const slow = await startTestServer({ http: { listen: '127.0.0.1:0', requestTimeoutMs: 1000 } });
    try {
      const socket = connect(Number(new URL(slow.url).port), '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => (answer += d));
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      socket.write(`POST /v1/machines HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${slow.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"macs":`);
      expect((await fetch(`${slow.url}/healthz`)).status).toBe(200);
      const started = Date.now();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
      expect(Date.now() - started).toBeLessThan(9_000);
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      socket.destroy();
    } finally {
      await slow.stop();
    }
  });
});

describe('machines are not trusted', () => {
  it('a phone-home from another address than the machine’s changes nothing (by default)', async () => {
    const before = dumpTables(s.livery.cmdb);
    const res = await fetch(`${s.url}/v1/machines/52:54:00:00:aa:01/booted`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ imageId: 'anything', kernel: 'k' }),
    });
    expect(res.status).toBe(403);
    expect(dumpTables(s.livery.cmdb)).toEqual(before);
    const unknown = await fetch(`${s.url}/v1/machines/52:54:00:00:ff:ff/booted`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"imageId":"x"}' });
    expect(unknown.status).toBe(404);
  });

  it('serves metadata only to the machine’s own address (by default)', async () => {
    await s.api('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:00:aa:03'], hostname: 'near', ip: '127.0.0.1' } });
    const far = await fetch(`${s.url}/v1/metadata/52:54:00:00:aa:01`);
    expect(far.status).toBe(403);
    expect((await far.json()).error).toContain("is answered only from that machine's reserved or leased address");
    expect((await fetch(`${s.url}/v1/metadata/52:54:00:00:aa:03`)).status).toBe(200);
  });
});

describe('TLS', () => {
  it('serves the API over HTTPS with a configured certificate', async () => {
    const dir = tempDir();
    const { cert, key } = selfSignedCert(dir.path);
    const tls = await startTestServer({ http: { listen: '127.0.0.1:0', tls: { cert, key } } });
    try {
      expect(tls.url).toMatch(/^https:/);
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(`${tls.url}/healthz`, { ca: execFileSync('cat', [cert]) }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end();
      });
      expect(JSON.parse(body).status).toBe('ok');
    } finally {
      await tls.stop();
      dir.cleanup();
    }
  });
});
