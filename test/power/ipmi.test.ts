import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BmcCredentials } from '../../src/cmdb/bmcs.js';
import { IpmiDriver } from '../../src/power/ipmi.js';
import { BmcError } from '../../src/power/types.js';
import { startIpmiSim, type IpmiSim } from '../helpers/ipmi-sim.js';
import { createTestNet, hostIn, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * livery's IPMI driver against OpenIPMI's ipmi_sim, a LAN BMC simulator, inside a private
 * network namespace; every change is checked with Debian's ipmitool itself.
 */
describe.skipIf(NETNS_SKIP)('IPMI power driver against ipmi_sim', () => {
  let net: TestNet;
  let sim: IpmiSim;
  const dir = tempDir();
  const creds = (over: Partial<BmcCredentials> = {}): BmcCredentials => ({
    driver: 'ipmi',
    address: sim.address,
    port: null,
    username: sim.username,
    password: sim.password,
    systemPath: null,
    verify: true,
    fingerprint: null,
    ...over,
  });
  const driver = (over: Partial<BmcCredentials> = {}, timeoutMs = 5000) => new IpmiDriver(creds(over), { timeoutMs, ipmiCipherSuite: 3, ipmitool: `ip netns exec ${net.client} ipmitool` });
  /** Debian's ipmitool, run by the test in the client namespace, as an operator would. */
  const ipmitool = (...args: string[]) =>
    net.exec(net.client, 'env', [`IPMI_PASSWORD=${sim.password}`, 'ipmitool', '-I', 'lanplus', '-C', '3', '-H', sim.address, '-U', sim.username, '-E', ...args]);

  beforeAll(async () => {
    net = createTestNet({ serverAddress: '10.77.1.1/24', clientAddresses: ['10.77.1.2/24'] });
    sim = await startIpmiSim(hostIn(net, net.server), '10.77.1.1', dir.path);
  });
  afterAll(async () => {
    await sim?.stop();
    net?.remove();
    dir.cleanup();
  });

  it('reads the power state, sets the next boot to PXE and powers on, as ipmitool then sees', async () => {
    const d = driver();
    expect(d.label).toBe('ipmi://admin@10.77.1.1:623');
    expect(await d.status()).toBe('off');
    await d.bootFromNetworkOnce();
    await d.power('on');
    expect(ipmitool('chassis', 'power', 'status')).toMatch(/Chassis Power is on/);
    expect(ipmitool('chassis', 'bootparam', 'get', '5')).toMatch(/Boot Device Selector : Force PXE/);
    expect(sim.chassis()).toMatchObject({ power: '1', boot: 'pxe' });
    expect(await d.status()).toBe('on');
  });

  it("the simulator's LAN channel shows its own address and MAC (what a machine's agent reads in-band)", () => {
    const lan = ipmitool('lan', 'print', '1');
    expect(lan).toMatch(/^IP Address\s+: 10\.77\.1\.1$/m);
    expect(lan).toMatch(/^MAC Address\s+: 02:00:0a:4d:01:01$/m);
    expect(sim.mac).toBe('02:00:0a:4d:01:01');
  });

  it('cycles (off, then on again) and resets', async () => {
    const d = driver();
    const before = sim.chassis().log.length;
    await d.power('cycle');
    // ipmi_sim powers back on by itself a second after the off.
    const deadline = Date.now() + 5000;
    while (sim.chassis().log.slice(before).join(',') !== 'power 0,power 1' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(sim.chassis().log.slice(before)).toEqual(['power 0', 'power 1']);
    await d.power('reset');
    expect(sim.chassis().log.at(-1)).toBe('reset 1');
    await d.power('off');
    expect(ipmitool('chassis', 'power', 'status')).toMatch(/Chassis Power is off/);
  });

  it('a wrong password is refused with an error naming the BMC, not retried as if it were a network fault', async () => {
    const err = await driver({ password: 'wrong' }).status().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect((err as BmcError).message).toMatch(/^BMC ipmi:\/\/admin@10\.77\.1\.1:623: ipmitool chassis power status failed: RAKP 2 HMAC is invalid; /);
    expect((err as BmcError).retryable).toBe(false);
  });

  it('an unreachable BMC fails within the time limit, naming it', async () => {
    const started = Date.now();
    const err = await driver({ address: '10.77.1.99' }, 2000).status().catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(err).toBeInstanceOf(BmcError);
    expect((err as BmcError).message).toMatch(/^BMC ipmi:\/\/admin@10\.77\.1\.99:623: /);
    expect((err as BmcError).retryable).toBe(true);
  });

  it('a BMC that stops answering mid-way is given up on at the time limit', async () => {
    // This test's simulator only: pidof would also find other tests' (and VMs') BMCs.
    const pid = sim.pid;
    process.kill(pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const err = await driver({}, 1500).status().catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(3500);
      expect((err as BmcError).message).toMatch(/^BMC ipmi:\/\/admin@10\.77\.1\.1:623: /);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(await driver().status()).toBe('off');
  });

  it('the password reaches ipmitool through its environment, never its command line', async () => {
    // A stand-in for ipmitool that reports what it was given, then fails.
    const spy = join(dir.path, 'ipmitool-spy');
    writeFileSync(spy, `#!/bin/sh\necho "argv: $*" >&2\n[ "$IPMI_PASSWORD" = "${sim.password}" ] && echo "password in environment" >&2\nexit 1\n`, { mode: 0o755 });
    const d = new IpmiDriver(creds(), { timeoutMs: 5000, ipmiCipherSuite: 3, ipmitool: spy });
    const err = (await d.status().catch((e: unknown) => e)) as BmcError;
    expect(err.message).toContain('argv: -I lanplus -C 3 -H 10.77.1.1 -p 623 -U admin -E -N 5 -R 1 -v chassis power status');
    expect(err.message).toContain('password in environment');
    expect(err.message).not.toContain(sim.password);
  });
});
