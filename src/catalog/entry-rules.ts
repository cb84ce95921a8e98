import { BundleError } from './errors.js';
import type { ManifestArtifact } from './manifest.js';

/** The parts of a tar header the rules look at. */
export interface EntryHeader {
  name: string;
  type?: string | null;
  size?: number;
  /** Where the entry's data starts in the tar (tar-stream sets it on every entry). */
  byteOffset?: number;
  /** The pax records that applied to this entry (an object of strings when present). */
  pax?: unknown;
}

/**
 * Livery writes a bundle as plain file members, with at most one pax header (a long name) in
 * front of one: this is far more than that needs. Anything beyond it is refused rather than
 * buffered (the tar reader alone would hold up to 4 MiB of headers per member).
 */
export const MAX_TAR_METADATA_BYTES = 16 * 1024;

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
  checkRegularFile(header);
  if (name === MANIFEST_ENTRY) throw new BundleError(name, 'appears twice');
  if (seen.has(name)) throw new BundleError(name, 'appears twice');
  const artifact = expected.get(name);
  if (!artifact) throw new BundleError(name, 'not listed in manifest.json');
  const size = header.size ?? 0;
  if (size > maxArtifactBytes) throw new BundleError(name, `${size} bytes exceeds catalog.maxArtifactBytes (${maxArtifactBytes})`);
  if (size !== artifact.size) throw new BundleError(name, `size mismatch (manifest ${artifact.size} bytes, got ${size})`);
  return artifact;
}

/**
 * Refuses every member type but a regular file. The tar reader reports a type flag it does not
 * know (GNU sparse 'S', volume labels, vendor extensions) as null: such a member is not read as
 * a file. pax-format sparse files are regular members carrying GNU.sparse records.
 */
export function checkRegularFile(header: EntryHeader): void {
  const { name, type } = header;
  if (type !== 'file') {
    const kind = type ? (KINDS[type] ?? `a ${type} entry`) : 'a tar member of a type livery does not write';
    throw new BundleError(name, `is ${kind}; only regular files are allowed`);
  }
  if (Object.keys(header.pax ?? {}).some((key) => key.startsWith('GNU.sparse'))) {
    throw new BundleError(name, 'is a GNU sparse file; only regular files are allowed');
  }
}

/**
 * Checks the tar headers between the end of the previous member (or the start of the tar) and
 * this member's data: its own 512-byte header plus any pax or GNU long-name headers, together
 * at most MAX_TAR_METADATA_BYTES. Returns where this member's data (padded to 512) ends.
 */
export function checkFraming(header: EntryHeader, previousEnd: number): number {
  const start = header.byteOffset ?? 0;
  const metadata = start - previousEnd;
  if (metadata > MAX_TAR_METADATA_BYTES) {
    throw new BundleError(header.name, `has ${metadata} bytes of tar headers; at most ${MAX_TAR_METADATA_BYTES} are allowed`);
  }
  return start + Math.ceil((header.size ?? 0) / 512) * 512;
}
