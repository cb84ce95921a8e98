import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb, type Cmdb } from '../../src/cmdb/index.js';
import { TOKEN_CHECK_INTERVAL_MS } from '../../src/cmdb/tokens.js';
import { databasePath } from '../../src/daemon/paths.js';
import { startTestServer, tokenSecret, type TestServer } from '../helpers/server.js';

/**
 * Tokens are verified against a copy each process keeps (hashes and records, never a secret):
 * a revocation through this process is refused at once, one made by another process (the CLI,
 * another HTTP worker: here a second connection to the same file) within TOKEN_CHECK_INTERVAL_MS.
 */
let s: TestServer;
let other: Cmdb;
const afterBound = () => new Promise((resolve) => setTimeout(resolve, TOKEN_CHECK_INTERVAL_MS + 1));

beforeAll(async () => {
  s = await startTestServer();
  other = openCmdb(databasePath(s.dataDir));
});
afterAll(async () => {
  other?.close();
  await s.stop();
});

async function newToken(name: string): Promise<{ id: string; token: string }> {
  const res = await s.api('/v1/tokens', { method: 'POST', json: { name, role: 'reader' } });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { token: string; id: string };
  return { id: body.id, token: body.token };
}
const status = async (token: string) => (await s.api('/v1/machines', { token })).status;

describe('token revocation', () => {
  it('refuses a token revoked through the API on the very next request', async () => {
    const { id, token } = await newToken('api-revoked');
    expect(await status(token)).toBe(200);
    expect((await s.api(`/v1/tokens/${id}`, { method: 'DELETE' })).ok).toBe(true);
    expect(await status(token)).toBe(401);
  });

  it('refuses a token another process revoked once the bound has passed, and keeps refusing it', async () => {
    const { id, token } = await newToken('cli-revoked');
    expect(await status(token)).toBe(200);
    other.tokens.revoke(id);
    await afterBound();
    expect(await status(token)).toBe(401);
    await afterBound();
    expect(await status(token)).toBe(401);
  });

  it('sees a token another process created, and a wrong secret for a known id stays refused', async () => {
    const { token } = other.tokens.create('cli-made', 'reader');
    expect(await status(token)).toBe(200);
    const wrong = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(await status(wrong)).toBe(401);
    expect(await status(token)).toBe(200);
  });

  it('keeps hashes and records in memory, never a secret', async () => {
    const { token } = await newToken('kept');
    expect(await status(token)).toBe(200);
    const secret = tokenSecret(token);
    const kept = (s.livery.cmdb.tokens as unknown as { known: Map<string, unknown> }).known;
    expect(kept.size).toBeGreaterThan(0);
    const dump = JSON.stringify([...kept.values()], (_k, v: unknown) => (v && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v));
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(Buffer.from(secret).toString('hex'));
  });
});
