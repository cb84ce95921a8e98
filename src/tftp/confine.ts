import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';

export type PathRefusal = 'nul-byte' | 'backslash' | 'absolute' | 'traversal' | 'empty';
export type RootRefusal = 'not-found' | 'symlink-escape' | 'unreadable';

/**
 * Turns a requested file name into a root-relative path of plain components, or says why not.
 * Pure. PXE ROMs commonly send "/undionly.kpxe", so one leading slash is dropped; anything that
 * could name a place outside the root is refused outright rather than normalised away, because
 * a request like "a/../../x" is an attack, not a typo.
 */
export function normalizeRequestPath(requested: string): { ok: true; path: string } | { ok: false; reason: PathRefusal } {
  if (requested.includes('\0')) return { ok: false, reason: 'nul-byte' };
  if (requested.includes('\\')) return { ok: false, reason: 'backslash' };
  const relative = requested.startsWith('/') ? requested.slice(1) : requested;
  if (relative.startsWith('/')) return { ok: false, reason: 'absolute' };
  const parts = relative.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { ok: false, reason: 'traversal' };
  if (parts.length === 0) return { ok: false, reason: 'empty' };
  return { ok: true, path: parts.join('/') };
}

/**
 * Resolves a normalised relative path under the root, following symlinks, and refuses it when
 * the real location is outside the root. `rootReal` must itself be a real path (no symlinks).
 */
export async function resolveUnderRoot(
  rootReal: string,
  relative: string,
): Promise<{ ok: true; path: string } | { ok: false; reason: RootRefusal }> {
  let real: string;
  try {
    real = await realpath(join(rootReal, relative));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' || code === 'ENOTDIR' ? 'not-found' : 'unreadable' };
  }
  const inside = rootReal.endsWith(sep) ? rootReal : rootReal + sep;
  if (!real.startsWith(inside)) return { ok: false, reason: 'symlink-escape' };
  return { ok: true, path: real };
}
