import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBmcUrl } from '../../src/cmdb/bmcs.js';
import { ensureSecretKey, keyIdOfSealed, SecretBox, SecretKeyError, secretKeyPath } from '../../src/cmdb/secret-box.js';
import { resolveConfig } from '../../src/config/index.js';
import { startLivery } from '../../src/daemon/index.js';
import { createLogger } from '../../src/log.js';
import { tempDir } from '../helpers/tmp.js';

describe('BMC secrets', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('creates a 32-byte key file mode 0600 once, and never overwrites it', () => {
    const path = join(dir.path, 'a.key');
    expect(ensureSecretKey(path)).toBe(true);
    const first = readFileSync(path);
    expect(first).toHaveLength(32);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(ensureSecretKey(path)).toBe(false);
    expect(readFileSync(path).equals(first)).toBe(true);
  });

  it('seals with AES-256-GCM: a fresh IV each time, the key id in the clear, the secret back out', () => {
    const path = join(dir.path, 'b.key');
    ensureSecretKey(path);
    const box = new SecretBox(path);
    const a = box.seal('hunter2');
    const b = box.seal('hunter2');
    expect(a).not.toBe(b);
    expect(a).not.toContain('hunter2');
    expect(keyIdOfSealed(a)).toBe(box.keyId());
    expect(box.open(a)).toBe('hunter2');
    expect(box.open(box.seal(''))).toBe('');
  });

  it('a wrong, missing, short or damaged key is reported naming the file, never as garbage', () => {
    const path = join(dir.path, 'c.key');
    ensureSecretKey(path);
    const box = new SecretBox(path);
    const sealed = box.seal('p');
    const original = readFileSync(path);
    writeFileSync(path, randomBytes(32));
    expect(() => box.open(sealed)).toThrow(new RegExp(`encrypted with key ${keyIdOfSealed(sealed)}, but the key file ${path} holds key`));
    writeFileSync(path, randomBytes(16));
    expect(() => box.open(sealed)).toThrow(`secret key file ${path} holds 16 bytes, not 32`);
    rmSync(path);
    expect(() => box.open(sealed)).toThrow(new RegExp(`^secret key file ${path} is missing`));
    writeFileSync(path, original);
    const parts = sealed.split(':');
    parts[4] = Buffer.from('x').toString('base64');
    expect(() => box.open(parts.join(':'))).toThrow(SecretKeyError);
    expect(() => box.open(parts.join(':'))).toThrow(/is damaged: it does not authenticate/);
  });

  it('the logger redacts passwords and bearer tokens wherever they sit', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d) => (text += d));
    const log = createLogger('info', 'test', out);
    log.info({ password: 'p1', bmc: { password: 'p2' }, body: { bmc: { password: 'p3' } }, req: { headers: { authorization: 'Bearer t0k' } } }, 'x');
    await new Promise((r) => setImmediate(r));
    expect(text).toContain('[redacted]');
    for (const secret of ['p1', 'p2', 'p3', 't0k']) expect(text).not.toContain(secret);
  });

  it('a start with another key file than the passwords were sealed with says so, naming the file', async () => {
    const dataDir = join(dir.path, 'data');
    const config = resolveConfig({ dataDir, log: { level: 'silent' }, http: { listen: '127.0.0.1:0' }, tftp: { enabled: false } });
    let livery = await startLivery(config, createLogger('silent'));
    const m = livery.cmdb.machines.create({ macs: ['02:00:00:00:60:01'] });
    livery.cmdb.bmcs.set(m.id, { driver: 'ipmi', address: '10.0.0.5', username: 'admin', password: 'pw' }, new SecretBox(secretKeyPath(dataDir)));
    await livery.close();
    rmSync(secretKeyPath(dataDir));
    const out = new PassThrough();
    let text = '';
    out.on('data', (d) => (text += d));
    livery = await startLivery(config, createLogger('info', 'livery', out));
    await livery.close();
    await new Promise((r) => setImmediate(r));
    const line = text.split('\n').map((l) => (l ? JSON.parse(l) : {})).find((l) => l.level === 'error');
    expect(line).toMatchObject({ keyFile: secretKeyPath(dataDir), msg: expect.stringMatching(/sealed with another key than the key file holds/) });
    expect(statSync(secretKeyPath(dataDir)).mode & 0o777).toBe(0o600);
  });

  it('reads BMC URLs and refuses a password in them', () => {
    expect(parseBmcUrl('ipmi://admin@10.0.0.5')).toEqual({ driver: 'ipmi', username: 'admin', address: '10.0.0.5', port: null, systemPath: null });
    expect(parseBmcUrl('redfish://root@bmc1.example:8443/redfish/v1/Systems/System.Embedded.1')).toEqual({
      driver: 'redfish',
      username: 'root',
      address: 'bmc1.example',
      port: 8443,
      systemPath: '/redfish/v1/Systems/System.Embedded.1',
    });
    expect(() => parseBmcUrl('ipmi://admin:pw@10.0.0.5')).toThrow(/a password does not go in the URL/);
    expect(() => parseBmcUrl('amt://admin@10.0.0.5')).toThrow(/^bmc: expected ipmi:\/\/user@address/);
    expect(() => parseBmcUrl('ipmi://10.0.0.5')).toThrow(/^bmc: expected/);
  });
});
