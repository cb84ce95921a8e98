import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { buildImage, type BuildResult } from '../../src/builder/index.js';
import { chooseAccel, PHONE_HOME } from '../../src/lab/vm/index.js';
import { BootLab, CLI, firstEvent, stageOrder, traceLine, type TracedBoot } from './helpers/boot-lab.js';

/**
 * The acceptance test of livery: real VMs network-boot from a real `livery serve` into an image
 * built by the builder, phone home, upgrade and roll back by reboot. All inside a network
 * namespace this test creates (bridge 10.99.0.1/24, one tap per VM) and removes.
 *
 * Three full boots of one machine, and a short one of a stranger:
 *   1. BIOS with the NIC's iPXE ROM: DHCP → script → kernel → initrd → rootfs → phone-home, on v1;
 *   2. the same after promoting a second build: the upgrade by reboot;
 *   3. after the rollback, through UEFI (OVMF) with no NIC ROM: the firmware's own PXE client
 *      (option 93 = 7) gets snponly.efi over TFTP, which runs as iPXE and takes the HTTP path.
 *      This one boot is both "the same boot through UEFI" and "the TFTP-first path": everything
 *      from power-on to the kernel's EFI stub runs in UEFI firmware, as on real UEFI servers
 *      (the alternative UEFI path, QEMU's iPXE EFI ROM, exists only in VMs);
 *   4. an unregistered MAC, until its script is served: discovery and the subnet's policy.
 * Then `livery vm boot` is run once as a script would run it.
 */
// The builder's own test uses this cache too, so a machine bootstraps the Debian base once.
const CACHE = '/var/cache/livery/test-builder';
const MINIMAL = resolve('images/minimal/recipe');
const NODE = { mac: '52:54:00:e2:e0:01', hostname: 'e2e-node' };
const STRANGER = '52:54:00:e2:e0:99';
// Bounds, not expectations: under TCG a full boot takes 2-3 minutes on two idle cores.
const FULL_BOOT_MS = 8 * 60_000;
const SHORT_BOOT_MS = 4 * 60_000;
const isRoot = process.getuid?.() === 0;

interface Published {
  id: string;
  name: string;
  version: string;
}

describe.skipIf(!isRoot)('network boot of real VMs from livery (needs root, QEMU, OVMF)', () => {
  const work = mkdtempSync(join(tmpdir(), 'livery-e2e-'));
  const started = Date.now();
  let lab: BootLab;
  let builds: BuildResult[];
  let first: Published;

  const cli = <T>(args: string[]) => lab.livery.cli<T>(args);
  const stableImage = async () => (await cli<{ name: string; channel: string; imageId: string }[]>(['image', 'channels'])).find((c) => c.name === 'minimal' && c.channel === 'stable')!.imageId;
  const artifactSize = (build: BuildResult, role: string) => build.manifest.artifacts.find((a) => a.role === role)!.size;
  const rootfsSha = (build: BuildResult) => build.manifest.artifacts.find((a) => a.role === 'rootfs')!.sha256;

  /** The checks every full boot of NODE shares: console, trace and phone-home agree on the image. */
  async function expectBootedInto(boot: { match: RegExpMatchArray; console: string }, build: BuildResult, imageId: string): Promise<TracedBoot> {
    expect(boot.match[1]).toBe(imageId);
    expect(boot.match[2]).toBe(NODE.hostname);
    // The initramfs checked the rootfs against the sha256 livery put on the kernel command line.
    expect(boot.console).toContain(`livery-initrd: rootfs sha256 verified (${rootfsSha(build)})`);
    const traced = await lab.lastBoot(NODE.mac);
    expect(traced).toMatchObject({ complete: true, reached: 'healthy', imageId });
    for (const role of ['kernel', 'initrd', 'rootfs']) {
      expect(traced.stages.find((s) => s.stage === role)!.detail).toMatchObject({ role, bytes: artifactSize(build, role) });
    }
    expect(traced.stages.find((s) => s.stage === 'booted')).toMatchObject({ event: 'booted' });
    // minimal's health check (sshd running) passed in the VM, and the agent reported it.
    expect(traced.stages.at(-1)).toMatchObject({ stage: 'healthy', event: 'healthy' });
    return traced;
  }

  beforeAll(async () => {
    // The KVM probes run while the images build (chooseAccel remembers its answers).
    const probes = Promise.all([chooseAccel('bios'), chooseAccel('uefi')]);
    const bundles = join(work, 'bundles');
    builds = [];
    for (let i = 0; i < 2; i++) builds.push(await buildImage({ recipePath: MINIMAL, outDir: bundles, cacheDir: CACHE }));
    await probes;
    lab = await BootLab.open(work);
    await Promise.all([lab.accel('bios'), lab.accel('uefi')]);
    first = await cli<Published>(['image', 'publish', builds[0]!.bundlePath, '--channel', 'stable']);
    await cli(['machine', 'add', '--mac', NODE.mac, '--hostname', NODE.hostname, '--image', 'minimal', '--channel', 'stable']);
    console.log(`e2e: setup (two builds, livery, probes) took ${Math.round((Date.now() - started) / 1000)} s`);
  }, 30 * 60_000);

  afterAll(async () => {
    try {
      await lab?.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
      console.log(`e2e: total ${Math.round((Date.now() - started) / 1000)} s`);
    }
  });

  it(
    'BIOS with the NIC iPXE ROM boots the stable image: DHCP, script, kernel, initrd, verified rootfs, phone-home',
    async () => {
      expect(await stableImage()).toBe(first.id);
      const boot = await lab.boot('bios', { mac: NODE.mac, firmware: 'bios', until: PHONE_HOME, checks: true, timeoutMs: FULL_BOOT_MS });
      const traced = await expectBootedInto(boot, builds[0]!, first.id);
      expect(stageOrder(traced), traceLine(traced)).toEqual(['dhcp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
      // The ROM is iPXE already: DHCP hands it the machine's script URL, no TFTP.
      expect(firstEvent(traced, 'dhcp-offer').detail).toMatchObject({ firmware: 'ipxe', next: { kind: 'script', url: `${lab.livery.url}/boot/${NODE.mac}.ipxe` } });
      expect(firstEvent(traced, 'ipxe-script').detail).toMatchObject({ template: 'ipxe/boot.ipxe', action: 'boot' });
      const machine = await cli<{ state: string; lastSeenAt: string | null }>(['machine', 'show', NODE.mac]);
      expect(machine.state).toBe('registered');
      expect(machine.lastSeenAt).not.toBeNull();
    },
    FULL_BOOT_MS + 60_000,
  );

  it(
    'an unregistered MAC is recorded as discovered and served the subnet policy (discover: wait and ask again)',
    async () => {
      await expect(cli(['machine', 'show', STRANGER])).rejects.toThrow(/404/);
      await lab.boot('stranger', { mac: STRANGER, firmware: 'bios', until: /livery: asking again in \d+ s/, timeoutMs: SHORT_BOOT_MS });
      expect(await cli<{ state: string }>(['machine', 'show', STRANGER])).toMatchObject({ state: 'discovered' });
      const traced = await lab.lastBoot(STRANGER);
      expect(stageOrder(traced), traceLine(traced)).toEqual(['dhcp', 'script']);
      expect(traced).toMatchObject({ complete: false, reached: 'script', stoppedBefore: 'kernel', imageId: null });
      expect(firstEvent(traced, 'ipxe-script').detail).toMatchObject({ template: 'ipxe/wait.ipxe', action: 'wait' });
    },
    SHORT_BOOT_MS + 60_000,
  );

  it(
    'upgrade by reboot: after a second build is promoted to stable, the next boot comes up on it',
    async () => {
      const second = await cli<Published>(['image', 'publish', builds[1]!.bundlePath]);
      expect(second.id).not.toBe(first.id);
      expect(await stableImage()).toBe(first.id);
      await cli(['image', 'promote', second.id, 'stable']);
      expect(await stableImage()).toBe(second.id);
      const boot = await lab.boot('bios-upgrade', { mac: NODE.mac, firmware: 'bios', until: PHONE_HOME, checks: true, timeoutMs: FULL_BOOT_MS });
      const traced = await expectBootedInto(boot, builds[1]!, second.id);
      expect(stageOrder(traced), traceLine(traced)).toEqual(['dhcp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
    },
    FULL_BOOT_MS + 60_000,
  );

  it(
    'rollback by reboot, through UEFI the way real servers boot: OVMF PXE gets snponly.efi over TFTP, iPXE takes the HTTP path, back on the first build',
    async () => {
      const rolledBack = await cli<{ imageId: string; changed: boolean }>(['image', 'rollback', 'minimal', 'stable']);
      expect(rolledBack).toMatchObject({ imageId: first.id, changed: true });
      const boot = await lab.boot('uefi-pxe-rollback', { mac: NODE.mac, firmware: 'uefi', nicRom: false, until: PHONE_HOME, checks: true, timeoutMs: FULL_BOOT_MS });
      const traced = await expectBootedInto(boot, builds[0]!, first.id);
      expect(stageOrder(traced), traceLine(traced)).toEqual(['dhcp', 'tftp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
      // The firmware's own PXE client, not iPXE: option 93 = 7, so the UEFI loader over TFTP.
      expect(firstEvent(traced, 'dhcp-offer').detail).toMatchObject({
        firmware: 'uefi-pxe',
        userClass: [],
        vendorClass: expect.stringMatching(/^PXEClient:Arch:00007:/),
        next: { kind: 'tftp', file: 'snponly.efi' },
      });
      // The loader arrived whole (OVMF first asks for its size and aborts, then downloads it).
      expect(traced.stages.find((s) => s.stage === 'tftp')!.detail).toMatchObject({
        file: 'snponly.efi',
        result: 'ok',
        bytes: statSync('/usr/lib/ipxe/snponly.efi').size,
      });
      // ... and ran as iPXE: the next DHCP comes from iPXE, which gets the script URL.
      const tftpAt = traced.stages.findIndex((s) => s.stage === 'tftp');
      const ipxeOffer = traced.stages.slice(tftpAt).find((s) => s.event === 'dhcp-offer')!;
      expect(ipxeOffer.detail).toMatchObject({ firmware: 'ipxe', next: { kind: 'script' } });
    },
    FULL_BOOT_MS + 60_000,
  );

  it(
    'livery vm boot, run as a script: a private livery boots the bundle, the phone-home is reported as JSON, nothing is left behind',
    async () => {
      const { accel } = await lab.accel('bios');
      const args = [CLI, '--json', 'vm', 'boot', '--exit-on-boot', '--accel', accel, '--timeout', String(FULL_BOOT_MS / 1000), builds[1]!.bundlePath];
      let stderr = '';
      onTestFailed(() => console.error(`e2e: livery vm boot said:\n${stderr}`));
      const run = await promisify(execFile)(process.execPath, args, { timeout: FULL_BOOT_MS + 60_000 }).catch((err: { stderr: string; message: string }) => {
        stderr = err.stderr;
        throw err;
      });
      stderr = run.stderr;
      const result = JSON.parse(run.stdout) as { ended: string; imageId: string; bootSeconds: number };
      expect(result).toMatchObject({ ended: 'booted', imageId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      expect(stderr).toContain(`livery vm: booted image ${result.imageId} as livery-vm in ${result.bootSeconds} s`);
      console.log(`e2e: livery vm boot: booted in ${result.bootSeconds} s`);
      // Its namespace and its temp dir (data, console) are gone.
      const ns = /in network namespace (\S+)/.exec(stderr)![1]!;
      const data = /data in (\S+)/.exec(stderr)![1]!;
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(new RegExp(`^${ns}\\b`, 'm'));
      expect(existsSync(data)).toBe(false);
    },
    FULL_BOOT_MS + 2 * 60_000,
  );
});
