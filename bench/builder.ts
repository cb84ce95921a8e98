import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildImage, parseRecipe } from '../src/builder/index.js';
import { systemDebianMirror } from '../src/builder/mirror.js';
import { planPackages } from '../src/builder/packages.js';
import { mountsUnder, removeTree } from '../src/builder/safe-remove.js';
import type { BenchHarness, BenchRow } from './lib/harness.js';

const RECIPE = resolve('images/minimal/recipe');
const MB = 1024 * 1024;

/**
 * Builds images/minimal with livery (cold: empty cache; warm: cached base) against the plain
 * way of making the same thing: debootstrap of the same package set (with Debian's own
 * initramfs-tools initrd) and mksquashfs -comp xz. Needs root, network access to the Debian
 * mirror apt uses, and ~2 GB in /var/tmp.
 */
export default async function builderBench(h: BenchHarness): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0) throw new Error('the builder benchmark needs root (debootstrap, mmdebstrap, chroot)');
  // Not under h.tmpDir: the harness deletes that folder when a benchmark times out, possibly
  // while mmdebstrap or debootstrap still has /proc and /dev mounted inside it.
  const scratch = `/var/tmp/livery-bench-builder-${process.pid}`;
  mkdirSync(scratch);
  try {
    return await measure(h, scratch);
  } finally {
    removeTree(scratch);
  }
}

async function measure(h: BenchHarness, scratch: string): Promise<BenchRow[]> {
  const cache = join(scratch, 'cache');
  const out = join(scratch, 'out');

  h.log('livery cold build (empty cache)');
  const cold = await timed(() => buildImage({ recipePath: RECIPE, outDir: out, cacheDir: cache }));
  const rootfsMb = artifactSize(cold.result.manifest, 'rootfs') / MB;
  const initrdMb = artifactSize(cold.result.manifest, 'initrd') / MB;

  const warm: number[] = [];
  for (let run = 0; run < h.runs; run++) {
    h.log(`livery warm build ${run + 1}/${h.runs}`);
    warm.push((await timed(() => buildImage({ recipePath: RECIPE, outDir: out, cacheDir: cache }))).seconds);
  }

  h.log('reference: debootstrap + mksquashfs -comp xz');
  const reference = await plainBuild(scratch);

  const notes = 'images/minimal; cold = 1 run each (a cold build downloads ~150 MB from the Debian mirror, so it is measured once)';
  return [
    h.row({ name: 'image build, cold (empty cache)', unit: 's', higherIsBetter: false, livery: [cold.seconds], reference: [reference.seconds], referenceName: 'debootstrap + mksquashfs xz', notes }),
    h.row({
      name: 'image build, warm (cached base; recipe files/%post changed)',
      unit: 's',
      higherIsBetter: false,
      livery: warm,
      reference: [reference.seconds],
      referenceName: 'debootstrap + mksquashfs xz (no cache: every rebuild is cold)',
    }),
    h.row({ name: 'rootfs size', unit: 'MB', higherIsBetter: false, livery: [rootfsMb], reference: [reference.rootfsMb], referenceName: 'debootstrap minbase, squashfs xz' }),
    h.row({ name: 'initrd size', unit: 'MB', higherIsBetter: false, livery: [initrdMb], reference: [reference.initrdMb], referenceName: "Debian's initramfs-tools initrd" }),
  ];
}

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const started = performance.now();
  const result = await fn();
  return { seconds: (performance.now() - started) / 1000, result };
}

function artifactSize(manifest: { artifacts: { role: string; size: number }[] }, role: string): number {
  return manifest.artifacts.find((a) => a.role === role)!.size;
}

/** The same package set the builder installs, the classic way. */
async function plainBuild(scratch: string): Promise<{ seconds: number; rootfsMb: number; initrdMb: number }> {
  const recipe = parseRecipe(RECIPE);
  const mirror = recipe.mirror ?? systemDebianMirror();
  if (mirror === undefined) throw new Error('no Debian mirror configured for apt');
  const packages = planPackages(recipe).install;
  const root = join(scratch, 'debootstrap');
  const squashfs = join(scratch, 'debootstrap.squashfs');
  mkdirSync(root);
  try {
    const { seconds } = await timed(async () => {
      execFileSync('debootstrap', ['--variant=minbase', `--include=${packages.join(',')}`, recipe.base.suite, root, mirror], { stdio: 'ignore', timeout: 30 * 60_000 });
      execFileSync('mksquashfs', [root, squashfs, '-comp', 'xz', '-noappend', '-no-progress', '-quiet'], { stdio: 'ignore', timeout: 30 * 60_000 });
    });
    const initrd = readdirSync(join(root, 'boot')).find((f) => f.startsWith('initrd.img-'));
    return { seconds, rootfsMb: statSync(squashfs).size / MB, initrdMb: initrd ? statSync(join(root, 'boot', initrd)).size / MB : 0 };
  } finally {
    // debootstrap leaves /proc and /sys mounted in the target when it fails.
    for (const mount of mountsUnder(root).reverse()) execFileSync('umount', ['-l', mount]);
  }
}
