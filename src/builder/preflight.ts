import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

/** Debian package providing each program the builder runs on the build machine. */
const TOOLS: Record<string, string> = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  unshare: 'util-linux',
  modprobe: 'kmod',
  tar: 'tar',
  dpkg: 'dpkg',
  sbverify: 'sbsigntool',
};

export class PreflightError extends Error {
  override name = 'PreflightError';
}

/** Fails unless the builder can do its work here: root, and every tool installed. */
export function preflight(): void {
  if (process.getuid?.() !== 0) {
    throw new PreflightError(
      'building an image needs root: mmdebstrap installs packages as root, the recipe is applied inside the image with chroot, and the image tree holds files of other owners that only root can create',
    );
  }
  const missing = Object.entries(TOOLS).filter(([program]) => !onPath(program));
  if (missing.length > 0) {
    throw new PreflightError(`missing build tools: ${missing.map(([p, pkg]) => `${p} (Debian package ${pkg})`).join(', ')}`);
  }
}

/** The build machine's Debian architecture; images are built for it (no emulation). */
export function hostArch(): string {
  return execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(`${dir}/${program}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
