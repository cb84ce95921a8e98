import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = '10.78.0.1';
const BRIDGE = 'lvbr0';

/** Each test starts livery and a real client: generous on a loaded machine. */
const TIMEOUT_MS = 180_000;

/**
 * livery on a bridge whose only port is down (no carrier: Node's interface list leaves the
 * bridge out) starts anyway, serves HTTP, and answers DHCP once the port comes up.
 */
describe.skipIf(NETNS_SKIP)('DHCP start-up on an interface without carrier', () => {
  const dir = tempDir();
  let net: TestNet;
  let livery: NsLivery | undefined;
  const dataDir = join(dir.path, 'var');
  const config = (iface: string) => ({
    dataDir,
    http: { listen: '0.0.0.0:8080', publicUrl: `http://${SERVER}:8080`, workers: 1 },
    tftp: { enabled: false },
    dhcp: { enabled: true, interface: iface, address: SERVER, interfaceRetrySeconds: 1 },
  });

  beforeAll(() => {
    // The veth's server end becomes the bridge's only port, and the bridge carries livery's address.
    net = createTestNet({ serverAddress: '10.78.9.1/32' });
    const inServer = (...args: string[]) => net.exec(net.server, 'ip', args);
    inServer('addr', 'flush', 'dev', net.serverIf);
    inServer('link', 'add', BRIDGE, 'type', 'bridge');
    inServer('addr', 'add', `${SERVER}/24`, 'dev', BRIDGE);
    inServer('link', 'set', net.serverIf, 'master', BRIDGE);
    inServer('link', 'set', net.serverIf, 'down');
    inServer('link', 'set', BRIDGE, 'up');
    const cmdb = openCmdb(databasePath(dataDir));
    cmdb.subnets.create({ name: 'lan', cidr: '10.78.0.0/24', gateway: SERVER, pools: [{ start: '10.78.0.100', end: '10.78.0.110' }], policy: 'discover' });
    cmdb.close();
  });
  afterAll(async () => {
    await livery?.stop();
    net?.remove();
    dir.cleanup();
  });

  it('refuses at start an interface that does not exist at all', async () => {
    await expect(startLiveryInNs(net, dir.path, config('lvnosuch0'))).rejects.toThrow(/dhcp\.interface: no interface lvnosuch0/);
  }, TIMEOUT_MS);

  it('waits for the bridge to come up, serving HTTP meanwhile, then answers a real client', async () => {
    expect(net.exec(net.server, 'cat', [`/sys/class/net/${BRIDGE}/operstate`]).trim()).toBe('down');
    livery = await startLiveryInNs(net, dir.path, config(BRIDGE), 'DHCP waits for it');
    expect(livery.output()).toContain(`dhcp.address ${SERVER} is not an address of ${BRIDGE} yet (it is not running (operstate down`);
    expect(net.exec(net.server, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${SERVER}:8080/healthz`])).toBe('200');
    expect(net.exec(net.server, 'curl', ['-s', `http://${SERVER}:8080/metrics`])).toMatch(/^livery_dhcp_up 0$/m);

    net.exec(net.server, 'ip', ['link', 'set', net.serverIf, 'up']);
    const deadline = Date.now() + 15_000;
    while (!livery.output().includes('dhcp listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(livery.output()).toContain('dhcp listening');

    const out = join(dir.path, 'udhcpc.out');
    const script = join(dir.path, 'udhcpc.sh');
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && echo "$ip $serverid" >> ${out}\nexit 0\n`);
    chmodSync(script, 0o755);
    net.exec(net.client, 'udhcpc', ['-f', '-q', '-n', '-t', '5', '-T', '1', '-i', net.clientIf, '-s', script], 30_000);
    expect(readFileSync(out, 'utf8').trim()).toBe(`10.78.0.100 ${SERVER}`);
    expect(net.exec(net.server, 'curl', ['-s', `http://${SERVER}:8080/metrics`])).toMatch(/^livery_dhcp_up 1$/m);
  }, TIMEOUT_MS);
});
