import type { Image } from '../cmdb/types.js';
import { DuplicateImageError } from './errors.js';
import type { BundleIdentity } from './identity.js';
import { manifestSha256, type ImageManifest } from './manifest.js';

interface ImageLookup {
  find(id: string): Image | null;
  findByVersion(name: string, version: string): Image | null;
}

const label = (name: string, version: string, id: string, digest: string) => `${name}:${version} (id ${id}, manifest sha256 ${digest.slice(0, 12)}…)`;

/**
 * The identity rules of the catalog, checked before a bundle's artifacts are read and again in
 * the transaction that inserts it. An id names one image and a name:version resolves to one
 * image, on every server: so a copy whose id is already here with the same manifest is already
 * done (identical), and any other overlap is refused, naming both images.
 */
export function refuseDuplicate(images: ImageLookup, manifest: ImageManifest, identity: BundleIdentity | null): void {
  const digest = identity?.manifestSha256 ?? manifestSha256(manifest);
  const theirs = (id: string) => label(manifest.name, manifest.version, id, digest);
  if (identity) {
    const same = images.find(identity.id);
    if (same) {
      const mine = manifestSha256(same.manifest);
      if (mine === digest) throw new DuplicateImageError(same.id, true, 'id', `image ${theirs(same.id)} is already in the catalog`);
      throw new DuplicateImageError(
        same.id,
        false,
        'id',
        `image id ${same.id} is already in the catalog as ${label(same.name, same.version, same.id, mine)}; the bundle's image is ${theirs(identity.id)}: one id names one image, so the bundle is refused`,
      );
    }
  }
  const existing = images.findByVersion(manifest.name, manifest.version);
  if (!existing) return;
  const mine = label(existing.name, existing.version, existing.id, manifestSha256(existing.manifest));
  if (identity) {
    throw new DuplicateImageError(
      existing.id,
      false,
      'version',
      `image ${manifest.name}:${manifest.version} is already in the catalog as ${mine}; the bundle's is ${theirs(identity.id)}: a name:version resolves to one image, so the bundle is refused (delete ${existing.id} here first to take the other)`,
    );
  }
  const identical = manifestSha256(existing.manifest) === digest;
  throw new DuplicateImageError(existing.id, identical, 'version', `image ${manifest.name} ${manifest.version} is already in the catalog as ${existing.id}${identical ? ' (same manifest)' : ' with a different manifest'}`);
}
