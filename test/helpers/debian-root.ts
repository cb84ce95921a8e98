import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { inChroot } from '../../src/builder/chroot.js';
import { hostArch } from '../../src/builder/preflight.js';
import type { StepRunner } from '../../src/builder/steps.js';

/**
 * A clean Debian root to install livery's package into: mmdebstrap's minbase of `suite` from
 * this machine's apt mirror, made once as a tarball under `cacheDir` (a minute or two) and
 * unpacked afresh for every run (seconds). Packages apt downloads inside are kept in
 * `cacheDir`/archives between runs, so a warm run fetches only the package lists.
 */
export async function cachedMinbase(runner: StepRunner, mirror: string, suite: string, cacheDir: string): Promise<string> {
  const key = createHash('sha256').update(JSON.stringify({ mirror, suite, arch: hostArch(), variant: 'minbase' })).digest('hex').slice(0, 16);
  const tarball = join(cacheDir, `${suite}-minbase-${key}.tar`);
  if (existsSync(tarball)) return tarball;
  mkdirSync(cacheDir, { recursive: true });
  // Made under a temporary name and renamed: an interrupted run never leaves a tarball a later run would trust.
  const partial = `${tarball}.partial-${process.pid}`;
  try {
    await runner.step(`mmdebstrap ${suite} minbase`, () =>
      runner.run('mmdebstrap', ['--mode=root', '--variant=minbase', '--format=tar', '--aptopt=Acquire::Languages "none"', suite, partial, mirror]),
    );
    renameSync(partial, tarball);
  } finally {
    rmSync(partial, { force: true });
  }
  return tarball;
}

/** Unpacks the cached root into `dir` (which must not exist yet). */
export async function unpackRoot(runner: StepRunner, tarball: string, dir: string): Promise<void> {
  mkdirSync(dir);
  await runner.step('unpack root', () => runner.run('tar', ['-xpf', tarball, '-C', dir, '--numeric-owner']));
}

/** Runs `script` with sh inside the root, in private mount and pid namespaces (nothing stays mounted, nothing keeps running). */
export function chrootSh(runner: StepRunner, root: string, name: string, script: string): Promise<string> {
  return runner.step(name, () => inChroot(runner, root, ['sh', '-ec', script], 0, { capture: true }));
}

/** apt's downloaded packages: into the root before an install, and the new ones back out after it. */
export function seedAptArchives(cacheDir: string, root: string): void {
  copyDebs(join(cacheDir, 'archives'), join(root, 'var/cache/apt/archives'));
}
export function keepAptArchives(root: string, cacheDir: string): void {
  copyDebs(join(root, 'var/cache/apt/archives'), join(cacheDir, 'archives'));
}

function copyDebs(from: string, to: string): void {
  if (!existsSync(from)) return;
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    // Only the mirror's packages: never a livery package apt was handed as a file.
    if (name.endsWith('.deb') && !name.startsWith('livery_') && !existsSync(join(to, name))) copyFileSync(join(from, name), join(to, name));
  }
}
