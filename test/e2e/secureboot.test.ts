import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuildResult } from '../../src/builder/index.js';
import { PHONE_HOME } from '../../src/lab/vm/index.js';
import { fileEntry, manifestEntry, manifestFor, packEntries } from '../helpers/bundle.js';
import { BootLab, firstEvent, stageOrder, traceLine } from './helpers/boot-lab.js';

/**
 * UEFI Secure Boot for real: OVMF's Secure Boot build with Microsoft's keys enrolled (it runs
 * only binaries signed by a key in its db) network-boots a livery image through Debian's signed
 * chain, shim -> network GRUB -> kernel, three VMs side by side in one lab:
 *   1. PXE: the firmware's PXE client gets shimx64.efi over TFTP; shim loads grubx64.efi, GRUB
 *      its entry config and grub.cfg, then kernel and initrd, all over TFTP (Debian 12's network
 *      GRUB has no HTTP); the kernel says Secure Boot is on, the agent phones home;
 *   2. UEFI HTTP Boot, with no TFTP at all (the lab drops this VM's TFTP packets, so its PXE
 *      attempt fails and the firmware moves on to HTTP Boot): the firmware runs shimx64.efi by
 *      URL, shim runs grubx64.efi by URL; there Debian 12's GRUB stops, having no HTTP of its own;
 *   3. the same firmware handed livery's unsigned iPXE (its machine says secureBoot off) is
 *      refused: this proves the firmware really enforces signatures;
 *   4. the signed chain handed the same kernel with its signature removed (its machine says
 *      secureBoot auto, which publishing does not guard) stops at GRUB, which asks shim to verify
 *      the kernel: this proves the chain verifies the kernel too, not only the loaders.
 */
const CACHE = '/var/cache/livery/test-builder';
const MINIMAL = resolve('images/minimal/recipe');
const PXE = { mac: '52:54:00:5b:00:01', hostname: 'sb-pxe' };
const HTTP = { mac: '52:54:00:5b:00:02', hostname: 'sb-http', ip: 50 };
const UNSIGNED = { mac: '52:54:00:5b:00:03', hostname: 'sb-unsigned' };
const UNSIGNED_KERNEL = { mac: '52:54:00:5b:00:04', hostname: 'sb-unsigned-kernel' };
// Bounds, not expectations: the signed chain under TCG adds shim and GRUB to a 2-3 minute boot,
// and the HTTP Boot VM first waits out its failed PXE attempts.
const FULL_BOOT_MS = 12 * 60_000;
const SHORT_BOOT_MS = 5 * 60_000;
const SECURE_BOOT_ON = /secureboot: Secure boot enabled/;
/** GRUB started, found no config it could read, and waits at its prompt (the firmware's own errors do not count). */
const GRUB_WITHOUT_CONFIG = /Welcome to GRUB![\s\S]*\bgrub(?: rescue)?> /;
/** The tests that boot after others wait for a VM slot (E2E_PARALLEL_VMS) first: their bound covers a full boot before them. */
const AFTER_A_FULL_BOOT_MS = FULL_BOOT_MS + SHORT_BOOT_MS + 60_000;
const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('UEFI Secure Boot through shim and GRUB (needs root, QEMU, OVMF, shim-signed, grub-efi-amd64-signed)', () => {
  const work = mkdtempSync(join(tmpdir(), 'livery-e2e-sb-'));
  let lab: BootLab;
  let build: BuildResult;
  let imageId: string;
  const cli = <T>(args: string[]) => lab.livery.cli<T>(args);

  beforeAll(async () => {
    build = await buildImage({ recipePath: MINIMAL, outDir: join(work, 'bundles'), cacheDir: CACHE });
    lab = await BootLab.open(work, { tag: 'sb', label: 'Secure Boot, dhcp full' });
    imageId = (await cli<{ id: string }>(['image', 'publish', build.bundlePath, '--channel', 'stable'])).id;
    const add = (m: { mac: string; hostname: string }, secureBoot: string, extra: string[] = []) =>
      cli(['machine', 'add', '--mac', m.mac, '--hostname', m.hostname, '--image', 'minimal', '--secure-boot', secureBoot, ...extra]);
    await add(PXE, 'on');
    await add(HTTP, 'on', ['--ip', lab.net.hostAddress(HTTP.ip)]);
    await add(UNSIGNED, 'off');
    await cli(['image', 'publish', await unsignedKernelBundle(build.bundlePath, work), '--channel', 'stable']);
    await cli(['machine', 'add', '--mac', UNSIGNED_KERNEL.mac, '--hostname', UNSIGNED_KERNEL.hostname, '--image', 'unsigned-kernel', '--secure-boot', 'auto']);
    // No TFTP for the HTTP Boot machine: whatever it boots came over HTTP.
    lab.net.exec('nft', ['add table inet sb; add chain inet sb in { type filter hook input priority 0; }; ' + `add rule inet sb in ip saddr ${lab.net.hostAddress(HTTP.ip)} udp dport 69 drop`]);
  }, 20 * 60_000);

  afterAll(async () => {
    try {
      await lab?.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('the builder recorded that the image kernel is signed', () => {
    expect(build.manifest.kernelSigned).toBe(true);
  });

  it.concurrent(
    'PXE: shimx64.efi over TFTP, the signed GRUB, its grub.cfg, the signed kernel with Secure Boot on, phone-home',
    async ({ onTestFailed }) => {
      const boot = await lab.boot('sb-pxe', { mac: PXE.mac, firmware: 'uefi', secureBoot: true, until: PHONE_HOME, checks: true, timeoutMs: FULL_BOOT_MS, onTestFailed });
      expect(boot.match.slice(1, 3)).toEqual([imageId, PXE.hostname]);
      expect(boot.console).toMatch(SECURE_BOOT_ON);
      const traced = await lab.lastBoot(PXE.mac);
      expect(traced).toMatchObject({ complete: true, reached: 'healthy', imageId });
      expect(firstEvent(traced, 'dhcp-offer').detail).toMatchObject({ firmware: 'uefi-pxe', next: { kind: 'tftp', file: 'shimx64.efi' } });
      // A trace folds transfers in a row into one stage that keeps the last: shim (after its size
      // probe), GRUB and GRUB's entry config; then, after GRUB asked for its per-machine config,
      // that config, the kernel and the initrd, all over TFTP.
      // One line per run, so that a failure's diff is short enough to stay in CI's log tail.
      const runs = traced.stages.filter((s) => s.stage === 'tftp').map((s) => `${(s.detail as { file: string }).file} ${(s.detail as { result: string }).result} ×${s.count}`);
      expect(runs, traceLine(traced)).toEqual(['grub/grub.cfg ok ×4', `images/${imageId}/initrd.img?mac=${PXE.mac} ok ×3`]);
      expect(boot.console).toMatch(/EFI stub: UEFI Secure Boot is enabled/);
      expect(firstEvent(traced, 'boot-config').detail).toMatchObject({ firmware: 'grub', template: 'grub/grub.cfg', action: 'boot' });
      expect(stageOrder(traced).slice(-3)).toEqual(['rootfs', 'booted', 'healthy']);
    },
    FULL_BOOT_MS + 60_000,
  );

  it.concurrent(
    "UEFI HTTP Boot without TFTP: the firmware runs shimx64.efi by URL, shim runs the signed GRUB by URL (where Debian 12's GRUB, lacking HTTP, stops)",
    async ({ onTestFailed }) => {
      const boot = await lab.boot('sb-http', { mac: HTTP.mac, firmware: 'uefi', secureBoot: true, until: GRUB_WITHOUT_CONFIG, timeoutMs: FULL_BOOT_MS, onTestFailed });
      console.log(`e2e: sb-http: console tail:\n${boot.console.split('\n').slice(-8).join('\n')}`);
      const traced = await lab.lastBoot(HTTP.mac);
      const httpOffer = traced.stages.find((s) => s.event === 'dhcp-offer' && (s.detail as { firmware: string }).firmware === 'uefi-http');
      expect(httpOffer?.detail).toMatchObject({ vendorClass: expect.stringMatching(/^HTTPClient/), next: { kind: 'http', url: `${lab.livery.url}/loaders/shimx64.efi` } });
      // Nothing arrived over TFTP (its requests were dropped before livery saw them): shim and GRUB came by URL.
      expect(traced.stages.filter((s) => s.stage === 'tftp')).toEqual([]);
      expect(boot.console).not.toMatch(/Access Denied/);
    },
    FULL_BOOT_MS + 60_000,
  );

  it.concurrent(
    "negative: the same firmware refuses livery's unsigned iPXE (the machine's secureBoot is off)",
    async ({ onTestFailed }) => {
      const boot = await lab.boot('sb-unsigned', { mac: UNSIGNED.mac, firmware: 'uefi', secureBoot: true, until: /Access Denied/, timeoutMs: SHORT_BOOT_MS, onTestFailed });
      const traced = await lab.lastBoot(UNSIGNED.mac);
      expect(firstEvent(traced, 'dhcp-offer').detail).toMatchObject({ firmware: 'uefi-pxe', next: { kind: 'tftp', file: 'snponly.efi' } });
      // It was downloaded whole, and then not run: iPXE never asked for its script.
      expect(traced.stages.filter((s) => s.stage === 'tftp').map((s) => s.detail)).toContainEqual(expect.objectContaining({ file: 'snponly.efi', result: 'ok' }));
      expect(traced.stages.some((s) => s.event === 'ipxe-script')).toBe(false);
      expect(boot.console).not.toMatch(/iPXE/);
    },
    AFTER_A_FULL_BOOT_MS,
  );

  it.concurrent(
    'negative: the signed chain refuses a kernel whose signature was removed (GRUB asks shim, shim says no)',
    async ({ onTestFailed }) => {
      const boot = await lab.boot('sb-unsigned-kernel', { mac: UNSIGNED_KERNEL.mac, firmware: 'uefi', secureBoot: true, until: /livery: boot of unsigned-kernel failed/, timeoutMs: SHORT_BOOT_MS, onTestFailed });
      expect(boot.console).toMatch(/bad shim signature/);
      const traced = await lab.lastBoot(UNSIGNED_KERNEL.mac);
      expect(firstEvent(traced, 'boot-config').detail).toMatchObject({ firmware: 'grub', action: 'boot' });
      // The kernel came whole over TFTP and was then refused: its initrd was never asked for, nothing booted.
      const files = traced.stages.filter((s) => s.stage === 'tftp').map((s) => s.detail as { file: string; result: string });
      expect(files.some((f) => /^images\/[^/]+\/vmlinuz/.test(f.file) && f.result === 'ok')).toBe(true);
      expect(files.some((f) => /^images\/[^/]+\/initrd/.test(f.file))).toBe(false);
      expect(stageOrder(traced)).not.toContain('booted');
    },
    AFTER_A_FULL_BOOT_MS,
  );
});

/**
 * The built image with its kernel's Authenticode signature removed (sbattach --remove), and
 * its initrd, as image "unsigned-kernel": everything else about the boot stays the same.
 */
async function unsignedKernelBundle(bundlePath: string, work: string): Promise<string> {
  const dir = mkdtempSync(join(work, 'unsigned-'));
  execFileSync('tar', ['-xf', bundlePath, '-C', dir, 'vmlinuz', 'initrd.img']);
  execFileSync('sbattach', ['--remove', join(dir, 'vmlinuz')]);
  const artifacts = [
    { name: 'vmlinuz', role: 'kernel' as const, content: readFileSync(join(dir, 'vmlinuz')) },
    { name: 'initrd.img', role: 'initrd' as const, content: readFileSync(join(dir, 'initrd.img')) },
  ];
  const out = join(dir, 'unsigned-kernel.tar');
  writeFileSync(out, await packEntries([manifestEntry(manifestFor('unsigned-kernel', '1', artifacts, { kernelSigned: false })), ...artifacts.map(fileEntry)]));
  return out;
}
