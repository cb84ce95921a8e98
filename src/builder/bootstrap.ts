import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { DPKG_PATH_EXCLUDES, DPKG_PATH_INCLUDES } from './excludes.js';
import type { PackagePlan } from './packages.js';
import type { RecipeBase } from './recipe-types.js';
import { removeTree } from './safe-remove.js';
import type { StepRunner } from './steps.js';

/**
 * Timestamp for everything in the cached base. The base is shared by every recipe with the
 * same package set, so it cannot take its epoch from any one recipe.
 */
export const BASE_EPOCH = 1735689600; // 2025-01-01T00:00:00Z

/** Bump when the way a base is made changes, so old cache entries are not reused. */
const BASE_FORMAT = 2;

export interface BaseSpec {
  base: RecipeBase;
  mirror: string;
  packages: PackagePlan;
}

/** Cache key: everything that decides the bootstrapped tree's content. */
export function baseKey(spec: BaseSpec): string {
  const identity = {
    format: BASE_FORMAT,
    suite: spec.base.suite,
    arch: spec.base.arch,
    components: [...spec.base.components].sort(),
    mirror: spec.mirror,
    install: [...spec.packages.install].sort(),
    purge: [...spec.packages.purge].sort(),
    excludes: DPKG_PATH_EXCLUDES,
    includes: DPKG_PATH_INCLUDES,
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 24);
}

/**
 * Returns the folder of a bootstrapped root for `spec`, running mmdebstrap only when the
 * cache has none. The tree is made under a temporary name and renamed into place, so an
 * interrupted bootstrap never leaves a half-made entry that a later build would trust.
 */
export async function ensureBase(runner: StepRunner, spec: BaseSpec, cacheDir: string): Promise<string> {
  const entry = join(cacheDir, `base-${baseKey(spec)}`);
  const root = join(entry, 'root');
  if (existsSync(root)) {
    runner.log(`base cache hit: ${entry}`);
    markUsed(entry);
    return root;
  }
  mkdirSync(cacheDir, { recursive: true });
  const temp = `${entry}.partial-${process.pid}`;
  removeTree(temp);
  mkdirSync(temp);
  try {
    await runner.run('mmdebstrap', mmdebstrapArgs(spec, join(temp, 'root')), {
      // INITRD=No: the kernel's postinst skips building Debian's initrd, which livery replaces.
      env: { INITRD: 'No', SOURCE_DATE_EPOCH: String(BASE_EPOCH), LC_ALL: 'C.UTF-8' },
    });
  } catch (err) {
    removeTree(temp);
    throw err;
  }
  try {
    renameSync(temp, entry);
  } catch (err) {
    // Another build bootstrapped the same base meanwhile: theirs is as good as ours.
    if (!existsSync(root)) throw err;
    removeTree(temp);
  }
  markUsed(entry);
  return root;
}

/** A base's mtime is when a build last used it: pruneBases keeps the most recent. */
function markUsed(entry: string): void {
  const now = new Date();
  utimesSync(entry, now, now);
}

/**
 * Removes all but the `keep` most recently used bases (always keeping `current`): each is a
 * whole Debian tree of a few hundred MB, and a changed package list makes a new one. Returns
 * the removed folders.
 */
export function pruneBases(cacheDir: string, keep: number, current: string): string[] {
  const bases = readdirSync(cacheDir)
    .filter((name) => /^base-[0-9a-f]+$/.test(name))
    .map((name) => join(cacheDir, name))
    .filter((path) => path !== current)
    .map((path) => ({ path, used: statSync(path).mtimeMs }))
    .sort((a, b) => b.used - a.used);
  const stale = bases.slice(Math.max(0, keep - 1)).map((b) => b.path);
  for (const path of stale) removeTree(path);
  return stale;
}

function mmdebstrapArgs(spec: BaseSpec, target: string): string[] {
  const args = [
    '--mode=root',
    '--variant=apt',
    '--format=directory',
    `--architectures=${spec.base.arch}`,
    `--components=${spec.base.components.join(',')}`,
    `--include=${spec.packages.install.join(',')}`,
    '--aptopt=Acquire::Languages "none"',
    '--aptopt=APT::Install-Recommends "false"',
    '--dpkgopt=force-unsafe-io',
    ...DPKG_PATH_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
    ...DPKG_PATH_INCLUDES.map((p) => `--dpkgopt=path-include=${p}`),
  ];
  // Purge the -pkg names, then keep only what was asked for: everything is marked automatic
  // except apt and the requested packages, so autoremove drops whatever only the purged
  // packages pulled in (usrmerge's perl). Essential packages are never autoremoved; a
  // package that is merely suggested or recommended is not kept, as recommends are not
  // installed in the first place.
  const keep = ['apt', ...spec.packages.install].join(' ');
  args.push(
    `--customize-hook=chroot "$1" apt-get -y purge ${spec.packages.purge.join(' ')}`,
    `--customize-hook=chroot "$1" sh -c 'apt-mark auto $(apt-mark showmanual) >/dev/null && apt-mark manual ${keep} >/dev/null && apt-get -y --purge -o APT::AutoRemove::SuggestsImportant=false -o APT::AutoRemove::RecommendsImportant=false autoremove'`,
  );
  return [...args, spec.base.suite, target, spec.mirror];
}
