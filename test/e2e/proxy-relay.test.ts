import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuildResult } from '../../src/builder/index.js';
import { chooseAccel, PHONE_HOME, type Firmware, type PrivateNetwork } from '../../src/lab/vm/index.js';
import { BootLab, firstEvent, stageOrder, traceLine, type BootOptions, type TracedBoot } from './helpers/boot-lab.js';

/**
 * livery's other two DHCP deployments, proven with real firmware booting to the agent's phone-home:
 *   - proxyDHCP beside another DHCP server (Debian's dnsmasq, addresses only, in a namespace of
 *     its own on the bridge): BIOS with the NIC's iPXE ROM, UEFI with the iPXE ROM, and UEFI's
 *     own PXE client (no NIC ROM) that fetches snponly.efi over TFTP; and a plain DHCP client
 *     (udhcpc) that gets its address from dnsmasq and nothing from livery;
 *   - relayed: the VMs on a segment of their own, livery on another, and Debian's dhcrelay
 *     routing between the two namespaces: a BIOS and a UEFI VM get addresses from the relayed
 *     subnet's pool through the relay (giaddr).
 * Full mode is test/e2e/boot.test.ts. Everything runs in namespaces this test creates and removes.
 */
const CACHE = '/var/cache/livery/test-builder';
const MINIMAL = resolve('images/minimal/recipe');
// Bounds, not expectations: under TCG a full boot takes 2-3 minutes on two idle cores, and
// over 8 when two boot side by side on a machine shared with other work.
const FULL_BOOT_MS = 15 * 60_000;
/** A boot test may wait for the boots ahead of it (five boots, two at a time by default). */
const BOOT_TEST_MS = 3 * FULL_BOOT_MS + 60_000;
const isRoot = process.getuid?.() === 0;

/** dnsmasq's address on the proxy lab's bridge (livery is 10.99.0.1 there). */
const DNSMASQ = '10.99.0.2';
/** The relay: 10.99.0.254 on livery's segment, 10.98.0.1 (the VMs' gateway) on theirs. */
const RELAY_UP = '10.99.0.254';
const RELAY_DOWN = '10.98.0.1';
const RELAYED_POOL = /^10\.98\.0\.(1\d\d)$/;

interface Node {
  mac: string;
  hostname: string;
  firmware: Firmware;
  nicRom: boolean;
  /** Reserved for it by the DHCP server that gives the addresses, and registered in livery. */
  ip?: string;
}
/**
 * Beside another DHCP server livery holds no leases, so it knows a machine's address only as the
 * operator registers it (the reservation the other server holds): with the default
 * http.metadataRequiresOwnAddress, metadata and phone-home are answered only from that address.
 */
const PROXY_NODES: Record<string, Node> = {
  bios: { mac: '52:54:00:e2:e1:01', hostname: 'proxy-bios', firmware: 'bios', nicRom: true, ip: '10.99.0.51' },
  uefi: { mac: '52:54:00:e2:e1:02', hostname: 'proxy-uefi', firmware: 'uefi', nicRom: true, ip: '10.99.0.52' },
  uefiPxe: { mac: '52:54:00:e2:e1:03', hostname: 'proxy-uefi-pxe', firmware: 'uefi', nicRom: false, ip: '10.99.0.53' },
};
const RELAYED_NODES: Record<string, Node> = {
  bios: { mac: '52:54:00:e2:e2:01', hostname: 'relayed-bios', firmware: 'bios', nicRom: true },
  uefiPxe: { mac: '52:54:00:e2:e2:02', hostname: 'relayed-uefi-pxe', firmware: 'uefi', nicRom: false },
};

describe.skipIf(!isRoot)('proxyDHCP and relayed network boots of real VMs (needs root, QEMU, OVMF, dnsmasq, dhcrelay)', () => {
  const work = mkdtempSync(join(tmpdir(), 'livery-e2e-proxy-'));
  const started = Date.now();
  let build: BuildResult;
  let proxy: BootLab;
  let relayed: BootLab;
  let vmSegment: PrivateNetwork;
  const leases = join(work, 'dnsmasq.leases');
  /** The image each lab published (its id in that lab's catalog). */
  const published = new Map<BootLab, string>();

  /** Boots `node` to phone-home; its trace, after the checks every boot shares. */
  async function bootToPhoneHome(lab: BootLab, name: string, node: Node, onTestFailed: BootOptions['onTestFailed'], net?: PrivateNetwork): Promise<TracedBoot> {
    const boot = await lab.boot(name, { mac: node.mac, firmware: node.firmware, nicRom: node.nicRom, until: PHONE_HOME, checks: true, timeoutMs: FULL_BOOT_MS, net, onTestFailed });
    const imageId = published.get(lab)!;
    expect(boot.match.slice(1, 3)).toEqual([imageId, node.hostname]);
    const traced = await lab.lastBoot(node.mac);
    expect(traced).toMatchObject({ complete: true, reached: 'healthy', imageId });
    console.log(`e2e: ${name}: trace ${traceLine(traced)}`);
    return traced;
  }

  /** livery's DHCP counters, from /metrics inside the lab. */
  function dhcpCounters(lab: BootLab): Map<string, number> {
    const text = lab.net.exec('curl', ['-sf', `${lab.livery.url}/metrics`]);
    return new Map([...text.matchAll(/^(livery_dhcp_(?:sent|dropped)_total\{[^}]*\}) (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  }

  async function openProxyLab(): Promise<BootLab> {
    const lab = await BootLab.open(work, { tag: 'e2e-px', dhcpMode: 'proxy', label: 'proxyDHCP beside dnsmasq' });
    const dhcp = lab.addHost('e2e-dnsmasq');
    lab.net.plug(dhcp, 'eth0', `${DNSMASQ}/24`);
    // Addresses only: no boot file, next-server or vendor options; no DNS (port 0).
    await lab.startService('dnsmasq', dhcp, 'dnsmasq', [
      '--keep-in-foreground', '--log-facility=-', '--log-dhcp', '--conf-file=/dev/null', '--port=0', '--user=root',
      '--interface=eth0', '--bind-interfaces', '--dhcp-range=10.99.0.100,10.99.0.199,255.255.255.0,1h',
      `--dhcp-option=option:router,${lab.net.address}`, `--dhcp-leasefile=${leases}`, '--pid-file',
      ...Object.values(PROXY_NODES).map((n) => `--dhcp-host=${n.mac},${n.ip}`),
    ], 'DHCP, IP range');
    return lab;
  }

  async function openRelayedLab(): Promise<BootLab> {
    const lab = await BootLab.open(work, { tag: 'e2e-rl', label: 'relayed by dhcrelay', relaySources: [RELAY_UP] });
    // The VMs' segment is its own namespace, and routes: the relay runs there.
    const vms = lab.addNetwork({ tag: 'e2e-rv', address: RELAY_DOWN });
    lab.net.plug(vms, 'up0', `${RELAY_UP}/24`);
    vms.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    lab.net.exec('ip', ['route', 'add', '10.98.0.0/24', 'via', RELAY_UP]);
    await lab.startService('dhcrelay', vms, 'dhcrelay', ['-4', '-d', '--no-pid', '-iu', 'up0', '-id', vms.bridge, lab.net.address], 'Sending on');
    await lab.livery.cli(['subnet', 'add', '--name', 'relayed', '--cidr', '10.98.0.0/24', '--gateway', RELAY_DOWN, '--pool', '10.98.0.100-10.98.0.199', '--policy', 'discover']);
    vmSegment = vms;
    return lab;
  }

  beforeAll(async () => {
    const probes = Promise.all([chooseAccel('bios'), chooseAccel('uefi')]);
    build = await buildImage({ recipePath: MINIMAL, outDir: join(work, 'bundles'), cacheDir: CACHE });
    await probes;
    [proxy, relayed] = await Promise.all([openProxyLab(), openRelayedLab()]);
    for (const [lab, nodes] of [[proxy, PROXY_NODES], [relayed, RELAYED_NODES]] as const) {
      await Promise.all([lab.accel('bios'), lab.accel('uefi')]);
      published.set(lab, (await lab.livery.cli<{ id: string }>(['image', 'publish', build.bundlePath, '--channel', 'stable'])).id);
      for (const n of Object.values(nodes)) {
        await lab.livery.cli(['machine', 'add', '--mac', n.mac, '--hostname', n.hostname, '--image', 'minimal', '--channel', 'stable', ...(n.ip ? ['--ip', n.ip] : [])]);
      }
    }
    console.log(`e2e: setup (build, two labs, dnsmasq, dhcrelay) took ${Math.round((Date.now() - started) / 1000)} s`);
  }, 30 * 60_000);

  afterAll(async () => {
    try {
      await proxy?.close();
      await relayed?.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
      console.log(`e2e: proxy-relay total ${Math.round((Date.now() - started) / 1000)} s`);
    }
  });

  /** The checks of a proxy boot: addresses from dnsmasq, boot information from livery's ProxyDHCP offers only. */
  function expectProxyBoot(traced: TracedBoot, node: Node): void {
    const events = traced.stages.map((s) => s.event);
    expect(events).not.toContain('dhcp-offer');
    // iPXE takes the offer as it is: no ProxyDHCP REQUEST to port 4011.
    expect(events).not.toContain('dhcp-proxy-request');
    // The phone-home came from the address dnsmasq reserved for it, which livery has as its ip.
    expect(firstEvent(traced, 'booted').detail.from).toBe(node.ip);
    expect(readFileSync(leases, 'utf8')).toContain(`${node.mac} ${node.ip} `);
  }

  /** The checks of a relayed boot: the firmware's offer came through the relay, from the relayed pool. */
  function expectRelayedBoot(traced: TracedBoot): void {
    expect(firstEvent(traced, 'dhcp-offer').detail).toMatchObject({ relay: RELAY_DOWN, ip: expect.stringMatching(RELAYED_POOL) });
    expect(firstEvent(traced, 'booted').detail.from).toMatch(RELAYED_POOL);
  }

  it('proxyDHCP: a client that is not a PXE client (udhcpc) gets its address from dnsmasq and nothing from livery', () => {
    const client = proxy.addHost('e2e-plain');
    proxy.net.plug(client, 'eth0');
    const out = join(work, 'udhcpc.out');
    const script = join(work, 'udhcpc.script');
    // A recording script: the default one would configure the interface.
    writeFileSync(script, `#!/bin/sh\necho "$1 ip=$ip serverid=$serverid" >> ${out}\n`);
    chmodSync(script, 0o755);
    const before = dhcpCounters(proxy);
    client.exec('timeout', ['40', 'udhcpc', '-f', '-q', '-n', '-t', '5', '-T', '2', '-i', 'eth0', '-s', script]);
    expect(readFileSync(out, 'utf8')).toMatch(new RegExp(`^bound ip=10\\.99\\.0\\.1\\d\\d serverid=${DNSMASQ.replaceAll('.', '\\.')}$`, 'm'));
    const after = dhcpCounters(proxy);
    const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
    expect(delta('livery_dhcp_dropped_total{reason="proxy-not-a-pxe-client"}')).toBeGreaterThanOrEqual(2);
    for (const key of after.keys()) if (key.startsWith('livery_dhcp_sent_total')) expect(delta(key), key).toBe(0);
  });

  // The five boots are independent (two labs): they run side by side, E2E_PARALLEL_VMS at a time
  // (BootLab), after the udhcpc test, which needs a proxy lab where no VM is talking.
  describe.concurrent('VM boots to phone-home', () => {
    for (const node of [PROXY_NODES.bios!, PROXY_NODES.uefi!]) {
      it(
        `proxyDHCP beside dnsmasq: ${node.firmware === 'bios' ? 'BIOS' : 'UEFI'} with the NIC iPXE ROM`,
        async ({ onTestFailed }) => {
          const traced = await bootToPhoneHome(proxy, node.hostname, node, onTestFailed);
          expect(stageOrder(traced), traceLine(traced)).toEqual(['dhcp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
          expect(firstEvent(traced, 'dhcp-proxy-discover').detail).toMatchObject({ firmware: 'ipxe', next: { kind: 'script' } });
          expectProxyBoot(traced, node);
        },
        BOOT_TEST_MS,
      );
    }

    it(
      "proxyDHCP beside dnsmasq: UEFI's own PXE client (no NIC ROM) gets snponly.efi over TFTP, and the iPXE it runs boots",
      async ({ onTestFailed }) => {
        const traced = await bootToPhoneHome(proxy, 'proxy-uefi-pxe', PROXY_NODES.uefiPxe!, onTestFailed);
        // The TFTP transfer is in livery's log but not in the machine's trace: livery ties a
        // transfer to a machine by its lease, and in proxy mode the lease is dnsmasq's.
        const from = PROXY_NODES.uefiPxe!.ip!.replaceAll('.', '\\.');
        expect(proxy.livery.output()).toMatch(new RegExp(`"client":\\{"address":"${from}","port":\\d+\\},"file":"snponly\\.efi","result":"ok","bytes":\\d+`));
        expect(stageOrder(traced), traceLine(traced)).toEqual(['dhcp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
        expect(firstEvent(traced, 'dhcp-proxy-discover').detail).toMatchObject({ firmware: 'uefi-pxe', next: { kind: 'tftp', file: 'snponly.efi' } });
        expect(traced.stages.find((s) => s.event === 'dhcp-proxy-discover' && s.detail.firmware === 'ipxe')!.detail).toMatchObject({ next: { kind: 'script' } });
        expectProxyBoot(traced, PROXY_NODES.uefiPxe!);
      },
      BOOT_TEST_MS,
    );

    it(
      'relayed by dhcrelay: BIOS with the NIC iPXE ROM, an address from the relayed pool',
      async ({ onTestFailed }) => {
        const traced = await bootToPhoneHome(relayed, 'relayed-bios', RELAYED_NODES.bios!, onTestFailed, vmSegment);
        expect(stageOrder(traced), traceLine(traced)).toEqual(['dhcp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
        expectRelayedBoot(traced);
      },
      BOOT_TEST_MS,
    );

    it(
      "relayed by dhcrelay: UEFI's own PXE client, snponly.efi over TFTP across the router, then iPXE",
      async ({ onTestFailed }) => {
        const traced = await bootToPhoneHome(relayed, 'relayed-uefi-pxe', RELAYED_NODES.uefiPxe!, onTestFailed, vmSegment);
        expect(stageOrder(traced), traceLine(traced)).toEqual(['dhcp', 'tftp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
        expect(firstEvent(traced, 'dhcp-offer').detail).toMatchObject({ firmware: 'uefi-pxe', next: { kind: 'tftp', file: 'snponly.efi' } });
        expectRelayedBoot(traced);
      },
      BOOT_TEST_MS,
    );
  });
});
