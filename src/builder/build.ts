import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { manifestProblems, type ImageManifest } from '../catalog/manifest.js';
import { BASE_EPOCH, ensureBase, pruneBases } from './bootstrap.js';
import { describeArtifact, writeBundle } from './bundle.js';
import { ImageCustomizer } from './customize.js';
import { buildInitramfs } from './initramfs.js';
import { systemDebianMirror } from './mirror.js';
import { planPackages } from './packages.js';
import { hostArch, preflight } from './preflight.js';
import { parseRecipe } from './recipe.js';
import type { Recipe } from './recipe-types.js';
import { IMAGE_VERSION } from './recipe-values.js';
import { scrubRoot } from './reproducible.js';
import { mountsUnder, removeTree } from './safe-remove.js';
import { makeSquashfs, type Compression } from './squashfs.js';
import { StepRunner, type StepEvent } from './steps.js';
import { bundleFileName, listBundles, nextVersion } from './version.js';
import { hasEfiSignature } from './signature.js';

export interface BuildOptions {
  recipePath: string;
  /** Where the bundle tar is written. */
  outDir: string;
  /** Bootstrapped bases (reused across builds) and scratch space. */
  cacheDir: string;
  /** Debian mirror; default: the recipe's, else this machine's apt configuration. */
  mirror?: string;
  compression?: Compression;
  /** Default: the recipe's, else UTC date plus a counter (2026.11.23.1). */
  version?: string;
  onStep?: (e: StepEvent) => void;
  /** Default: <cacheDir>/logs. */
  logDir?: string;
  /** Bootstrapped bases kept in cacheDir, most recently used first (default 3). */
  keepBases?: number;
  signal?: AbortSignal;
}

export interface BuildResult {
  bundlePath: string;
  manifest: ImageManifest;
  logPath: string;
  /** Milliseconds per step. */
  timings: Record<string, number>;
}

export const ARTIFACT_NAMES = { kernel: 'vmlinuz', initrd: 'initrd.img', rootfs: 'rootfs.squashfs' } as const;

/**
 * Builds a bootable image bundle from a recipe: bootstrap (cached), configure, %post, initramfs,
 * squashfs, bundle. The bundle appears in outDir only complete (written under a temporary
 * name, then renamed); the scratch tree is always removed.
 */
export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  preflight();
  const recipe = parseRecipe(opts.recipePath);
  const arch = hostArch();
  if (recipe.base.arch !== arch) throw new Error(`recipe is for ${recipe.base.arch} but this machine builds ${arch} only`);
  const mirror = opts.mirror ?? recipe.mirror ?? systemDebianMirror();
  if (mirror === undefined) throw new Error('no Debian mirror: none in the recipe or options, and none found in /etc/apt/sources.list(.d)');
  const packages = planPackages(recipe);
  const outDir = resolve(opts.outDir);
  const cacheDir = resolve(opts.cacheDir);
  const version = opts.version ?? recipe.version ?? nextVersion(recipe.name, listBundles(outDir), new Date());
  if (!IMAGE_VERSION.test(version)) throw new Error(`invalid version '${version}'`);
  const bundlePath = join(outDir, bundleFileName(recipe.name, version));
  if (existsSync(bundlePath)) throw new Error(`${bundlePath} already exists`);
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? BASE_EPOCH);

  const logDir = resolve(opts.logDir ?? join(cacheDir, 'logs'));
  mkdirSync(logDir, { recursive: true });
  mkdirSync(outDir, { recursive: true });
  const logPath = join(logDir, `${recipe.name}-${version}.log`);
  writeFileSync(logPath, `livery image build ${recipe.name} ${version} from ${recipe.file}\nmirror ${mirror}\npackages ${packages.install.join(' ')}\n`);
  const runner = new StepRunner(logPath, opts.onStep, opts.signal);

  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(cacheDir, 'work-'));
  const root = join(work, 'root');
  const artifacts = join(work, 'artifacts');
  mkdirSync(artifacts);
  try {
    const base = await runner.step('bootstrap', () => ensureBase(runner, { base: recipe.base, mirror, packages }, cacheDir));
    for (const old of pruneBases(cacheDir, opts.keepBases ?? 3, dirname(base))) runner.log(`removed unused base ${old}`);
    await runner.step('mount-base', () => mountWritableCopy(runner, base, work, root));
    const customizer = new ImageCustomizer(runner, root, recipe, epoch);
    await runner.step('configure', () => customizer.withStage(() => customizer.configure()));
    await runner.step('post', () => customizer.withStage(() => customizer.postScripts()));
    const installed = await runner.step('inventory', () => customizer.packageList());
    const kernelVersion = await runner.step('kernel', async () => extractKernel(root, join(artifacts, ARTIFACT_NAMES.kernel)));
    const kernelSigned = await hasEfiSignature(join(artifacts, ARTIFACT_NAMES.kernel));
    runner.log(`kernel ${kernelVersion} is ${kernelSigned ? 'signed (Secure Boot can boot it)' : 'not signed (Secure Boot refuses it)'}`);
    await runner.step('initramfs', () => buildInitramfs(runner, root, kernelVersion, join(artifacts, ARTIFACT_NAMES.initrd), epoch));
    await runner.step('scrub', async () => scrubRoot(root));
    await runner.step('squashfs', () => makeSquashfs(runner, root, join(artifacts, ARTIFACT_NAMES.rootfs), opts.compression ?? 'zstd', epoch));
    const manifest = await runner.step('bundle', () => packBundle({ recipe, version, packages: installed, artifacts, bundlePath, epoch, kernelSigned }));
    runner.log(`bundle ${bundlePath}`);
    return { bundlePath, manifest, logPath, timings: runner.timings };
  } finally {
    if (mountsUnder(root).length > 0) execFileSync('umount', [root]);
    removeTree(work);
  }
}

interface PackInput {
  recipe: Recipe;
  version: string;
  packages: ImageManifest['packages'];
  /** Folder holding the artifacts under their ARTIFACT_NAMES. */
  artifacts: string;
  bundlePath: string;
  epoch: number;
  kernelSigned: boolean;
}

/** Describes the artifacts in a manifest and writes the bundle, appearing at bundlePath only when complete. */
async function packBundle(p: PackInput): Promise<ImageManifest> {
  const manifest: ImageManifest = {
    schema: 1,
    name: p.recipe.name,
    version: p.version,
    os: `debian-${p.recipe.base.suite}`,
    arch: p.recipe.base.arch,
    createdAt: new Date().toISOString(),
    kernelArgs: p.recipe.kernelArgs,
    artifacts: [
      await describeArtifact(join(p.artifacts, ARTIFACT_NAMES.kernel), 'kernel'),
      await describeArtifact(join(p.artifacts, ARTIFACT_NAMES.initrd), 'initrd'),
      await describeArtifact(join(p.artifacts, ARTIFACT_NAMES.rootfs), 'rootfs'),
    ],
    recipe: p.recipe.text,
    packages: p.packages,
    health: p.recipe.health,
    kernelSigned: p.kernelSigned,
  };
  const problems = manifestProblems(manifest);
  if (problems.length > 0) throw new Error(`manifest invalid: ${problems.join('; ')}`);
  const paths = new Map(manifest.artifacts.map((a) => [a.name, join(p.artifacts, a.name)]));
  const partial = join(dirname(p.bundlePath), `.${basename(p.bundlePath)}.partial-${process.pid}`);
  try {
    await writeBundle(partial, manifest, paths, p.epoch);
    renameSync(partial, p.bundlePath);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
  return manifest;
}

/** Copies the image's only kernel out and drops it (and its /vmlinuz links) from the rootfs, which never boots it itself. */
function extractKernel(root: string, dest: string): string {
  const kernels = readdirSync(join(root, 'boot')).filter((f) => f.startsWith('vmlinuz-'));
  if (kernels.length !== 1) throw new Error(`expected one kernel in /boot, found ${kernels.length ? kernels.join(', ') : 'none'}`);
  const kernelFile = kernels[0]!;
  copyFileSync(join(root, 'boot', kernelFile), dest);
  for (const link of ['boot/' + kernelFile, 'vmlinuz', 'vmlinuz.old', 'initrd.img', 'initrd.img.old']) rmSync(join(root, link), { force: true });
  return kernelFile.slice('vmlinuz-'.length);
}

/**
 * The image root: an overlay with the cached base as its read-only lower layer. Copying the
 * base would cost seconds of I/O per build; with the overlay, the build writes only what it
 * changes, and the cache can never be modified through the image root.
 */
async function mountWritableCopy(runner: StepRunner, base: string, work: string, root: string): Promise<void> {
  for (const dir of ['upper', 'overlay-work', 'root']) mkdirSync(join(work, dir));
  await runner.run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base},upperdir=${join(work, 'upper')},workdir=${join(work, 'overlay-work')}`, root]);
}
