import { BundleError } from './errors.js';
import type { ManifestArtifact } from './manifest.js';

/** The parts of a tar header the rules look at. */
export interface EntryHeader {
  name: string;
  type?: string | null;
  size?: number;
}

const KINDS: Record<string, string> = {
  link: 'a hard link',
  symlink: 'a symbolic link',
  'character-device': 'a character device',
  'block-device': 'a block device',
  directory: 'a directory',
  fifo: 'a FIFO',
  'contiguous-file': 'a contiguous file',
};

export const MANIFEST_ENTRY = 'manifest.json';

/**
 * Decides whether one tar entry after manifest.json may be stored, and returns the manifest
 * artifact it delivers. Throws a BundleError naming the entry and the first rule it breaks.
 * Nothing here trusts the tar: names are compared exactly, never normalised.
 */
export function checkArtifactEntry(
  header: EntryHeader,
  expected: ReadonlyMap<string, ManifestArtifact>,
  seen: ReadonlySet<string>,
  maxArtifactBytes: number,
): ManifestArtifact {
  const name = header.name;
  const segments = name.split('/');
  if (segments.includes('..')) throw new BundleError(name, 'path escapes the bundle');
  if (name.startsWith('/')) throw new BundleError(name, 'absolute path');
  if (name.includes('/')) throw new BundleError(name, 'not at the top level of the bundle (artifact names have no "/")');
  const type = header.type ?? 'file';
  if (type !== 'file') throw new BundleError(name, `is ${KINDS[type] ?? `a ${type} entry`}; only regular files are allowed`);
  if (name === MANIFEST_ENTRY) throw new BundleError(name, 'appears twice');
  if (seen.has(name)) throw new BundleError(name, 'appears twice');
  const artifact = expected.get(name);
  if (!artifact) throw new BundleError(name, 'not listed in manifest.json');
  const size = header.size ?? 0;
  if (size > maxArtifactBytes) throw new BundleError(name, `${size} bytes exceeds catalog.maxArtifactBytes (${maxArtifactBytes})`);
  if (size !== artifact.size) throw new BundleError(name, `size mismatch (manifest ${artifact.size} bytes, got ${size})`);
  return artifact;
}
