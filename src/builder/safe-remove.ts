import { readFileSync, rmSync } from 'node:fs';

/** Mount points at or below `dir` (from /proc/self/mountinfo), so nothing mounted is ever deleted. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.replace(/\/+$/, '');
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === prefix || p.startsWith(`${prefix}/`)));
}

/**
 * Deletes a build tree, refusing when anything is still mounted inside it: chroot and
 * mmdebstrap mount /proc and /dev into image roots, and a recursive delete through such a
 * mount would delete the build machine's own files.
 */
export function removeTree(dir: string): void {
  const mounts = mountsUnder(dir);
  if (mounts.length > 0) throw new Error(`not removing ${dir}: still mounted at ${mounts.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
}
