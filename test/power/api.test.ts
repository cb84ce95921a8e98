import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretKeyPath } from '../../src/cmdb/secret-box.js';
import { CLI } from '../helpers/cli.js';
import { startIpmiSim, type IpmiSim } from '../helpers/ipmi-sim.js';
import { createTestNet, hostIn, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { startRedfishBmc, StateBackend, type RedfishBmc } from '../helpers/redfish-bmc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * Power through the REST API and the CLI, on a real livery: an IPMI machine behind ipmi_sim in
 * a private namespace (ipmitool run inside it, via power.ipmitool), a Redfish machine behind
 * the test BMC on loopback, a machine without a BMC and one with a wrong password.
 */
describe.skipIf(NETNS_SKIP)('power API and CLI', () => {
  let net: TestNet;
  let sim: IpmiSim;
  let redfish: RedfishBmc;
  const backend = new StateBackend();
  let s: TestServer;
  const dir = tempDir();
  const json = async (r: Response) => ({ status: r.status, body: (await r.json()) as Record<string, any> });
  /** The built CLI, run asynchronously: the server answers from this process. */
  const cli = async (...args: string[]) => {
    try {
      const r = await promisify(execFile)(process.execPath, [CLI, '--url', s.url, '--token', s.token, ...args], { encoding: 'utf8', timeout: 60_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  beforeAll(async () => {
    net = createTestNet({ serverAddress: '10.77.3.1/24', clientAddresses: ['10.77.3.2/24'] });
    sim = await startIpmiSim(hostIn(net, net.server), '10.77.3.1', join(dir.path, 'sim'));
    redfish = await startRedfishBmc(dir.path, backend);
    s = await startTestServer({ power: { ipmitool: `ip netns exec ${net.client} ipmitool`, timeoutMs: 3000, retries: 1 } });
    for (const [mac, hostname, labels] of [
      ['02:00:00:00:30:01', 'kvm1', { role: 'kvm' }],
      ['02:00:00:00:30:02', 'kvm2', { role: 'kvm' }],
      ['02:00:00:00:30:03', 'nobmc', { role: 'db' }],
      ['02:00:00:00:30:04', 'badpw', { role: 'db' }],
    ] as const) {
      expect((await s.api('/v1/machines', { method: 'POST', json: { macs: [mac], hostname, labels, site: 'par1' } })).status).toBe(201);
    }
  });
  afterAll(async () => {
    await s?.stop();
    await redfish?.close();
    await sim?.stop();
    net?.remove();
    dir.cleanup();
  });

  it('creates the secret key at first start, mode 0600', () => {
    const key = statSync(secretKeyPath(s.dataDir));
    expect(key.size).toBe(32);
    expect(key.mode & 0o777).toBe(0o600);
  });

  it('stores a BMC password sealed and never returns or logs it', async () => {
    const pwFile = join(dir.path, 'pw');
    writeFileSync(pwFile, `${sim.password}\n`);
    const r = await cli('machine', 'set', 'kvm1', '--bmc', `ipmi://admin@${sim.address}`, '--bmc-password-file', pwFile);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/bmc\s+ipmi:\/\/admin@10\.77\.3\.1 \(password set\)/);
    const put = await json(await s.api('/v1/machines/kvm2/bmc', {
      method: 'PUT',
      json: { driver: 'redfish', address: '127.0.0.1', port: redfish.port, username: redfish.username, password: redfish.password, fingerprint: redfish.fingerprint },
    }));
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ driver: 'redfish', passwordSet: true, verify: true, fingerprint: redfish.fingerprint });
    expect(JSON.stringify(put.body)).not.toContain(redfish.password);
    await s.api('/v1/machines/badpw/bmc', { method: 'PUT', json: { driver: 'ipmi', address: sim.address, username: 'admin', password: 'wrong' } });
    const got = await json(await s.api('/v1/machines/kvm1/bmc'));
    expect(got.body).toEqual(expect.objectContaining({ driver: 'ipmi', address: '10.77.3.1', port: null, username: 'admin', passwordSet: true }));
    expect(got.body).not.toHaveProperty('password');
    // At rest: sealed with the key's id, no clear text anywhere in the database or the audit log.
    const db = new Database(join(s.dataDir, 'livery.db'), { readonly: true });
    const sealed = db.prepare('SELECT password_sealed FROM machine_bmcs').pluck().all() as string[];
    const audit = JSON.stringify(db.prepare("SELECT * FROM audit_log WHERE action = 'machine.bmc.set'").all());
    db.close();
    expect(sealed).toHaveLength(3);
    for (const v of sealed) expect(v).toMatch(/^v1:[0-9a-f]{8}:/);
    expect(sealed.join()).not.toContain(sim.password);
    expect(audit).toContain('\\"passwordChanged\\":true');
    expect(audit).not.toContain(sim.password);
    expect(audit).not.toContain(redfish.password);
  });

  it('refuses a password in the URL, and a bad BMC field, naming the field', async () => {
    const r = await cli('machine', 'set', 'kvm1', '--bmc', 'ipmi://admin:secret@10.0.0.5', '--bmc-password-file', '/dev/null');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--bmc: a password does not go in the URL/);
    const bad = await json(await s.api('/v1/machines/kvm1/bmc', { method: 'PUT', json: { driver: 'ipmi', address: '10.0.0.5', username: 'a', password: 'p', fingerprint: 'xyz' } }));
    expect(bad).toEqual({ status: 400, body: { error: 'bmc.fingerprint: must be a sha256 fingerprint: 64 hex digits (colons allowed)', field: 'bmc.fingerprint' } });
    const badDriver = await json(await s.api('/v1/machines/kvm1/bmc', { method: 'PUT', json: { driver: 'amt', address: '10.0.0.5', username: 'a' } }));
    expect(badDriver.status).toBe(400);
    expect(badDriver.body.error).toMatch(/^body\.driver/);
  });

  it('powers one machine on through IPMI: PXE next, on, an event in its trace and an audit row', async () => {
    const on = await json(await s.api('/v1/machines/kvm1/power', { method: 'POST', json: { action: 'on' } }));
    expect(on).toMatchObject({ status: 200, body: { machine: 'kvm1', bmc: 'ipmi://admin@10.77.3.1:623', ok: true, state: 'off', error: null } });
    expect(sim.chassis()).toMatchObject({ power: '1', boot: 'pxe' });
    // What livery learned is kept with the BMC: the state the action led to, then the one the status read told.
    const learned = (await json(await s.api('/v1/machines/kvm1/bmc'))).body.power;
    expect(learned).toMatchObject({ state: 'on', at: expect.stringMatching(/^\d{4}-/) });
    // Switched off behind livery's back (ipmitool at the BMC): the next status read learns it.
    net.exec(net.client, 'ipmitool', ['-I', 'lanplus', '-C', String(s.config.power.ipmiCipherSuite), '-H', sim.address, '-U', sim.username, '-P', sim.password, 'chassis', 'power', 'off']);
    expect(sim.chassis().power).toBe('0');
    const status = await json(await s.api('/v1/machines/kvm1/power'));
    expect(status.body).toMatchObject({ ok: true, state: 'off' });
    expect((await json(await s.api('/v1/machines/kvm1/bmc'))).body.power).toMatchObject({ state: 'off' });
    await s.api('/v1/machines/kvm1/power', { method: 'POST', json: { action: 'on' } });
    const trace = await json(await s.api('/v1/machines/kvm1/trace'));
    expect(trace.body.boots.at(-1).stages[0]).toMatchObject({ stage: 'power', event: 'power', detail: { action: 'on', result: 'ok' } });
    const audit = new Database(join(s.dataDir, 'livery.db'), { readonly: true });
    const row = audit.prepare("SELECT actor, target, detail FROM audit_log WHERE action = 'power.on'").get() as { actor: string; target: string; detail: string };
    audit.close();
    expect(row).toMatchObject({ actor: 'token:bootstrap-admin', target: '02:00:00:00:30:01' });
    expect(JSON.parse(row.detail)).toMatchObject({ bmc: 'ipmi://admin@10.77.3.1:623', result: 'ok' });
  });

  it('clear errors: no BMC (409), wrong password (502, naming the BMC and its answer)', async () => {
    const none = await json(await s.api('/v1/machines/nobmc/power', { method: 'POST', json: { action: 'cycle' } }));
    expect(none.status).toBe(409);
    expect(none.body.error).toMatch(/^machine nobmc has no BMC/);
    const wrong = await json(await s.api('/v1/machines/badpw/power', { method: 'POST', json: { action: 'on' } }));
    expect(wrong.status).toBe(502);
    expect(wrong.body.error).toMatch(/^BMC ipmi:\/\/admin@10\.77\.3\.1:623: ipmitool chassis power status failed: RAKP 2 HMAC is invalid/);
    // Refused credentials are not tried again.
    expect(wrong.body.result.attempts).toBe(1);
    // A BMC that never answered taught livery nothing.
    expect((await json(await s.api('/v1/machines/badpw/bmc'))).body.power).toBeNull();
    const bad = await json(await s.api('/v1/machines/kvm1/power', { method: 'POST', json: { action: 'explode' } }));
    expect(bad.status).toBe(400);
  });

  it('cycles every machine a selector matches, across drivers, from the CLI', async () => {
    const resetsBefore = backend.resets.length;
    const r = await cli('power', 'cycle', '--selector', 'role=kvm,site=par1');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kvm1\s+ipmi:\/\/admin@10\.77\.3\.1:623\s+on\s+ok/);
    expect(r.stdout).toMatch(/kvm2\s+redfish:\/\/root@127\.0\.0\.1:\d+\s+off\s+ok/);
    expect(r.stdout).toContain('cycle: 2 ok, 0 failed');
    // The Redfish machine was off: cycling it is switching it on, after a one-time PXE override.
    expect(backend.resets.slice(resetsBefore)).toEqual(['On']);
    // The power-on used the override, which a one-time override then spends.
    expect(redfish.bootsWithOverride.at(-1)).toBe('Pxe');
    expect(redfish.boot).toEqual({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Disabled' });
    const mixed = await cli('power', 'status', 'kvm1', 'nobmc');
    expect(mixed.code).toBe(1);
    expect(mixed.stdout).toContain('status: 1 ok, 1 failed');
  });


  it('a cycle the BMC took but never answered is not sent again (no second boot), and says so', async () => {
    const resetsBefore = backend.resets.length;
    redfish.stallAfterReset = true;
    try {
      const r = await json(await s.api('/v1/machines/kvm2/power', { method: 'POST', json: { action: 'cycle' } }));
      expect(r.status).toBe(502);
      expect(r.body.error).toMatch(/no answer to POST \S+ComputerSystem\.Reset within 3000 ms \(not sent again: the BMC may have carried it out\)/);
      expect(backend.resets.length).toBe(resetsBefore + 1);
      // status and boot override once each, the reset once: nothing repeated.
      expect(r.body.result.attempts).toBe(3);
    } finally {
      redfish.stallAfterReset = false;
    }
  });
  it('a reader may read power state but not change it', async () => {
    const reader = (await json(await s.api('/v1/tokens', { method: 'POST', json: { name: 'ro', role: 'reader' } }))).body.token as string;
    expect((await s.api('/v1/machines/kvm2/power', { token: reader })).status).toBe(200);
    expect((await s.api('/v1/machines/kvm2/power', { method: 'POST', token: reader, json: { action: 'off' } })).status).toBe(403);
    expect((await s.api('/v1/power', { method: 'POST', token: reader, json: { action: 'off', selector: 'role=kvm' } })).status).toBe(403);
  });

  it('a replaced key file is detected by key id and named, not decrypted to garbage', async () => {
    const path = secretKeyPath(s.dataDir);
    const original = readFileSync(path);
    writeFileSync(path, randomBytes(32));
    try {
      const r = await json(await s.api('/v1/machines/kvm1/power', { method: 'POST', json: { action: 'status' } }));
      expect(r.status).toBe(503);
      expect(r.body.error).toMatch(new RegExp(`^stored secret was encrypted with key [0-9a-f]{8}, but the key file ${path} holds key [0-9a-f]{8}`));
    } finally {
      writeFileSync(path, original);
    }
    expect((await s.api('/v1/machines/kvm1/power')).status).toBe(200);
  });
});
