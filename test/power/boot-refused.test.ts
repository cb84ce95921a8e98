import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpmiDriver } from '../../src/power/ipmi.js';
import { BootOverrideRefused } from '../../src/power/types.js';
import { CLI } from '../helpers/cli.js';
import { startIpmiSim, type IpmiSim } from '../helpers/ipmi-sim.js';
import { createTestNet, hostIn, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * A BMC that refuses the one-time network boot: OpenIPMI's ipmi_sim driving a "VM" (here a
 * process that only sleeps) answers `chassis bootdev pxe` with "invalid data field", and
 * ipmitool still exits 0. Livery must see the refusal, go ahead with the power action (a
 * diskless machine boots from its NIC by its own boot order), and say so in the result, the
 * event and the CLI.
 */
describe.skipIf(NETNS_SKIP)('a BMC that refuses the one-time network boot', () => {
  let net: TestNet;
  let sim: IpmiSim;
  let s: TestServer;
  const dir = tempDir();
  const pidFile = join(dir.path, 'vm.pid');

  beforeAll(async () => {
    net = createTestNet({ serverAddress: '10.77.4.1/24', clientAddresses: ['10.77.4.2/24'] });
    // The "VM" ipmi_sim starts on power on: it records its pid and lives a bounded time.
    const startcmd = join(dir.path, 'vm.sh');
    writeFileSync(startcmd, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 120\n`);
    chmodSync(startcmd, 0o755);
    sim = await startIpmiSim(hostIn(net, net.server), '10.77.4.1', join(dir.path, 'sim'), undefined, { startcmd, vmPort: 9015 });
    s = await startTestServer({ power: { ipmitool: `ip netns exec ${net.client} ipmitool`, timeoutMs: 3000, retries: 1 } });
    expect((await s.api('/v1/machines', { method: 'POST', json: { macs: ['02:00:00:00:40:01'], hostname: 'vm1' } })).status).toBe(201);
    const bmc = { driver: 'ipmi', address: sim.address, username: sim.username, password: sim.password };
    expect((await s.api('/v1/machines/vm1/bmc', { method: 'PUT', json: bmc })).status).toBe(200);
  });
  afterAll(async () => {
    await s?.stop();
    await sim?.stop();
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
      } catch {}
    }
    net?.remove();
    dir.cleanup();
  });

  it('the driver reports the refusal that ipmitool prints but does not exit with', async () => {
    const driver = new IpmiDriver(
      { driver: 'ipmi', address: sim.address, port: null, username: sim.username, password: sim.password, systemPath: null, verify: true, fingerprint: null },
      { timeoutMs: 3000, ipmiCipherSuite: 3, ipmitool: `ip netns exec ${net.client} ipmitool` },
    );
    const err = await driver.bootFromNetworkOnce().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootOverrideRefused);
    expect((err as Error).message).toBe(
      'BMC ipmi://admin@10.77.4.1:623: refused the one-time network boot: Set Chassis Boot Parameter 5 failed: Invalid data field in request',
    );
  });

  it('power on goes ahead, and the result, the event and the CLI say the BMC refused the network boot', async () => {
    const res = await s.api('/v1/machines/vm1/power', { method: 'POST', json: { action: 'on' } });
    const body = (await res.json()) as { ok: boolean; state: string; warning: string | null };
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ ok: true, state: 'off', warning: expect.stringMatching(/refused the one-time network boot: .*; went ahead: the machine boots by its own boot order$/) });
    // ipmi_sim runs the "VM" after it answers: give it a bounded moment.
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(pidFile)).toBe(true);
    const event = s.livery.cmdb.events.recent(1, { types: ['power'] })[0]!;
    expect(event.detail).toMatchObject({ action: 'on', result: 'ok', warning: body.warning });
    const status = (await (await s.api('/v1/machines/vm1/power')).json()) as { state: string; warning: string | null };
    expect(status).toMatchObject({ state: 'on', warning: null }); // a status read sets no boot device
    // Asked again from the CLI: done, and the refusal on stderr.
    const cli = await promisify(execFile)(process.execPath, [CLI, '--url', s.url, '--token', s.token, 'power', 'on', 'vm1'], { encoding: 'utf8', timeout: 60_000 });
    expect(cli.stdout).toMatch(/^vm1\s+ipmi:\/\/admin@10\.77\.4\.1:623\s+on\s+ok$/m);
    expect(cli.stderr).toMatch(/^warning: vm1: BMC ipmi:\/\/admin@10\.77\.4\.1:623: refused the one-time network boot: Set Chassis Boot Parameter 5 failed/m);
  });
});
