import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BmcCredentials } from '../../src/cmdb/bmcs.js';
import { RedfishDriver } from '../../src/power/redfish.js';
import { BmcError } from '../../src/power/types.js';
import { startRedfishBmc, StateBackend, type RedfishBmc } from '../helpers/redfish-bmc.js';
import { tempDir } from '../helpers/tmp.js';

/** livery's Redfish driver, and Debian's redfishtool as the referee, against the test BMC on loopback. */
describe('Redfish power driver', () => {
  const dir = tempDir();
  let bmc: RedfishBmc;
  let backend: StateBackend;
  const drivers: RedfishDriver[] = [];
  const creds = (over: Partial<BmcCredentials> = {}): BmcCredentials => ({
    driver: 'redfish',
    address: '127.0.0.1',
    port: bmc.port,
    username: bmc.username,
    password: bmc.password,
    systemPath: null,
    verify: true,
    fingerprint: bmc.fingerprint,
    ...over,
  });
  const driver = (over: Partial<BmcCredentials> = {}, timeoutMs = 3000) => {
    const d = new RedfishDriver(creds(over), { timeoutMs });
    drivers.push(d);
    return d;
  };
  // Asynchronous: the BMC answers from this very process.
  const redfishtool = async (...args: string[]) =>
    (await promisify(execFile)('redfishtool', ['-r', `127.0.0.1:${bmc.port}`, '-u', bmc.username, '-p', bmc.password, '-S', 'Always', '-T', '5', ...args], { encoding: 'utf8', timeout: 20_000 })).stdout;

  beforeAll(async () => {
    backend = new StateBackend();
    bmc = await startRedfishBmc(dir.path, backend);
  });
  beforeEach(() => {
    bmc.requests.length = 0;
    bmc.stall = false;
  });
  afterAll(async () => {
    for (const d of drivers) await d.close();
    await bmc?.close();
    dir.cleanup();
  });

  it('speaks standard Redfish: redfishtool reads the system and resets it, with basic auth and with a session', async () => {
    const system = JSON.parse(await redfishtool('Systems', '-1')) as { PowerState: string; Actions: Record<string, unknown> };
    expect(system.PowerState).toBe('Off');
    expect(Object.keys(system.Actions)).toEqual(['#ComputerSystem.Reset']);
    await redfishtool('Systems', '-1', 'reset', 'On');
    expect(backend.resets).toEqual(['On']);
    expect(JSON.parse(await redfishtool('-A', 'Session', 'Systems', '-1')).PowerState).toBe('On');
    expect(bmc.requests.some((r) => r.auth === 'session')).toBe(true);
    await redfishtool('-A', 'Session', 'Systems', '-1', 'reset', 'ForceOff');
    expect(backend.resets).toEqual(['On', 'ForceOff']);
  });

  it('finds the system, sets a one-time PXE boot and resets it with the DMTF ResetType values', async () => {
    const d = driver();
    expect(d.label).toBe(`redfish://root@127.0.0.1:${bmc.port}`);
    expect(await d.status()).toBe('off');
    await d.bootFromNetworkOnce();
    expect(bmc.boot).toEqual({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' });
    const before = backend.resets.length;
    await d.power('on');
    // The power-on used the override, and a one-time override is then spent.
    expect(bmc.bootsWithOverride).toEqual(['Pxe']);
    expect(bmc.boot.BootSourceOverrideEnabled).toBe('Disabled');
    await d.power('cycle');
    await d.power('reset');
    await d.power('off');
    expect(backend.resets.slice(before)).toEqual(['On', 'PowerCycle', 'ForceRestart', 'ForceOff']);
    expect(bmc.bootsWithOverride).toEqual(['Pxe']);
    // The system was found once, by discovery, then used by its path.
    expect(bmc.requests.filter((r) => r.path === '/redfish/v1/Systems')).toHaveLength(1);
    // redfishtool sees what livery did.
    expect(JSON.parse(await redfishtool('Systems', '-1')).Boot.BootSourceOverrideTarget).toBe('Pxe');
  });

  // A URL without a port leaves it out of what the connection is handed: the pinned-certificate
  // path must still dial 443 (on loopback; binding it needs root).
  it.skipIf(process.getuid?.() !== 0)('reaches a pinned BMC on the default HTTPS port', async () => {
    const on443 = await startRedfishBmc(dir.path, new StateBackend(), undefined, { port: 443 });
    try {
      const d = driver({ port: 443, fingerprint: on443.fingerprint, password: on443.password });
      expect(d.label).toBe('redfish://root@127.0.0.1:443');
      expect(await d.status()).toBe('off');
      expect(on443.requests.length).toBeGreaterThan(0);
    } finally {
      await on443.close();
    }
  });

  it('refuses a self-signed certificate unless it is pinned, and says how to accept it', async () => {
    const err = (await driver({ fingerprint: null }).status().catch((e: unknown) => e)) as BmcError;
    expect(err).toBeInstanceOf(BmcError);
    expect(err.message).toMatch(/^BMC redfish:\/\/root@127\.0\.0\.1:\d+: TLS: .*pin the certificate's sha256 fingerprint/);
    expect(bmc.requests).toHaveLength(0);
    expect(await driver({ fingerprint: null, verify: false }).status()).toBe('off');
  });

  it('a wrong pinned fingerprint stops the connection before the credentials are sent', async () => {
    const err = (await driver({ fingerprint: 'ab'.repeat(32) }).status().catch((e: unknown) => e)) as BmcError;
    expect(err.message).toMatch(/certificate fingerprint [0-9a-f]{64} is not the pinned (ab){32}/);
    expect(err.retryable).toBe(false);
    expect(bmc.requests).toHaveLength(0);
  });

  it('a wrong password: the BMC answer, named, and not retryable', async () => {
    const err = (await driver({ password: 'wrong' }).status().catch((e: unknown) => e)) as BmcError;
    expect(err.message).toMatch(/^BMC redfish:\/\/root@127\.0\.0\.1:\d+: GET \/redfish\/v1\/Systems answered 401 Unauthorized: There is no valid session/);
    expect(err.retryable).toBe(false);
  });

  it('an unreachable BMC and a BMC that hangs both fail within the time limit', async () => {
    const refused = (await driver({ port: 1 }).status().catch((e: unknown) => e)) as BmcError;
    expect(refused.message).toMatch(/^BMC redfish:\/\/root@127\.0\.0\.1:1: cannot reach it for GET \/redfish\/v1\/Systems: /);
    expect(refused.retryable).toBe(true);
    bmc.stall = true;
    const started = Date.now();
    const hung = (await driver({}, 800).status().catch((e: unknown) => e)) as BmcError;
    expect(Date.now() - started).toBeLessThan(2500);
    expect(hung.message).toMatch(/no answer to GET \/redfish\/v1\/Systems within 800 ms/);
    expect(hung.retryable).toBe(true);
  });

  it('a system path that is set is used as is, and a wrong one is reported', async () => {
    const err = (await driver({ systemPath: '/redfish/v1/Systems/9' }).status().catch((e: unknown) => e)) as BmcError;
    expect(err.message).toMatch(/GET \/redfish\/v1\/Systems\/9 answered 404 Not Found: The resource at the URI \/redfish\/v1\/Systems\/9 was not found/);
    expect(bmc.requests.map((r) => r.path)).not.toContain('/redfish/v1/Systems');
  });
});
