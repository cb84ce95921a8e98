import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ASSETS } from './assets.js';
import { encodeCpio, type CpioEntry } from './cpio.js';
import type { StepRunner } from './steps.js';

/** Modules /init cannot work without: the rootfs is a squashfs on a loop device under an overlay. */
const REQUIRED_MODULES = ['af_packet', 'loop', 'squashfs', 'overlay'];

/**
 * Wired NIC drivers for virtual machines and the common server adapters (Intel, Broadcom,
 * Mellanox, Realtek, Emulex, QLogic, Solarflare, AWS ENA, VMware). Ones the kernel lacks are
 * skipped with a log line; the boot NIC must be among the rest.
 */
const NIC_MODULES = [
  'virtio_pci',
  'virtio_net',
  'e1000',
  'e1000e',
  'igb',
  'igc',
  'ixgbe',
  'i40e',
  'ice',
  'tg3',
  'bnx2',
  'bnx2x',
  'bnxt_en',
  'mlx4_en',
  'mlx5_core',
  'r8169',
  'be2net',
  'qede',
  'sfc',
  'ena',
  'vmxnet3',
];

export interface InitramfsResult {
  /** Module paths relative to /lib/modules/<version>/, in load order. */
  modules: string[];
  skipped: string[];
}

/**
 * Builds livery's own initramfs from an image root: busybox-static, /init, the udhcpc hook and
 * the NIC/storage modules with their dependencies, resolved against the image's own kernel.
 * Written as a gzip-compressed newc cpio (gzip: every kernel can unpack it; level 6 is within
 * 1% of level 9 in size at a tenth of the time).
 */
export async function buildInitramfs(runner: StepRunner, root: string, kernelVersion: string, outPath: string, epoch: number): Promise<InitramfsResult> {
  const modules: string[] = [];
  const skipped: string[] = [];
  for (const name of [...REQUIRED_MODULES, ...NIC_MODULES]) {
    let out: string;
    try {
      out = await runner.run('modprobe', ['--dirname', root, '--set-version', kernelVersion, '--show-depends', name], { capture: true });
    } catch (err) {
      if (REQUIRED_MODULES.includes(name)) throw new Error(`module ${name} is needed by the initramfs but the image's kernel has none: ${(err as Error).message}`);
      skipped.push(name);
      continue;
    }
    for (const path of modulePaths(out, kernelVersion)) if (!modules.includes(path)) modules.push(path);
  }
  if (skipped.length > 0) runner.log(`initramfs: kernel ${kernelVersion} has no ${skipped.join(', ')}; skipped`);

  const moduleDir = `lib/modules/${kernelVersion}`;
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'etc', 'lib', 'lib/livery', 'newroot', 'proc', 'run', 'sbin', 'sys', 'tmp', 'usr', 'usr/bin', 'usr/sbin'].map((path) => dir(path)),
    // The kernel opens /dev/console for /init's output before /init can mount devtmpfs.
    { path: 'dev/console', type: 'chardev', mode: 0o600, major: 5, minor: 1 },
    { path: 'dev/null', type: 'chardev', mode: 0o666, major: 1, minor: 3 },
    file('init', readFileSync(ASSETS.init()), 0o755),
    file('lib/livery/cmdline.sh', readFileSync(ASSETS.cmdline()), 0o644),
    file('bin/busybox', readFileSync(join(root, 'usr/bin/busybox')), 0o755),
    file('etc/livery-udhcpc', readFileSync(ASSETS.udhcpcScript()), 0o755),
    file('etc/livery-modules', new TextEncoder().encode(modules.map((m) => `${kernelVersion}/${m.replace(/\.(xz|zst)$/, '')}\n`).join('')), 0o644),
  ];
  const dirs = new Set<string>();
  for (const m of modules) {
    const parts = `${moduleDir}/${m}`.split('/');
    for (let i = 2; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    entries.push(file(`${moduleDir}/${m.replace(/\.(xz|zst)$/, '')}`, readModule(join(root, moduleDir, m)), 0o644));
  }
  entries.push(...[...dirs].map((d) => dir(d)));
  writeFileSync(outPath, gzipSync(encodeCpio(entries, epoch), { level: 6 }));
  runner.log(`initramfs: ${modules.length} modules`);
  return { modules, skipped };
}

/** `modprobe --show-depends` lines `insmod /…/lib/modules/<v>/kernel/….ko` → `kernel/….ko`; builtins are skipped. */
export function modulePaths(showDepends: string, kernelVersion: string): string[] {
  const marker = `/lib/modules/${kernelVersion}/`;
  return showDepends
    .split('\n')
    .filter((l) => l.startsWith('insmod '))
    .map((l) => l.split(/\s+/)[1]!)
    .map((p) => p.slice(p.indexOf(marker) + marker.length));
}

/** busybox insmod wants plain .ko files; newer Debian kernels ship them compressed. */
function readModule(path: string): Uint8Array {
  if (path.endsWith('.xz')) return execFileSync('xz', ['-dc', path], { maxBuffer: 64 << 20 });
  if (path.endsWith('.zst')) return execFileSync('zstd', ['-dc', path], { maxBuffer: 64 << 20 });
  return readFileSync(path);
}

const dir = (path: string): CpioEntry => ({ path, type: 'dir', mode: 0o755 });
const file = (path: string, data: Uint8Array, mode: number): CpioEntry => ({ path, type: 'file', data, mode });
