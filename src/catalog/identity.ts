import { IMAGE_ID } from '../cmdb/validate.js';
import { BundleError } from './errors.js';
import { manifestSha256, type ImageManifest } from './manifest.js';

/**
 * The entry an exported bundle carries right after manifest.json: which image this is (its id)
 * and the sha256 of its manifest. A bundle with it is a copy of an image that already exists
 * somewhere, and the catalog that receives it keeps that id, so a pin by id means the same image
 * on every server. A builder's bundle has none and gets a fresh id. The leading dot keeps the
 * name out of the artifact names' form, so no artifact can be mistaken for it.
 */
export const IDENTITY_ENTRY = '.livery-image.json';

export interface BundleIdentity {
  id: string;
  manifestSha256: string;
}

/** At most this many bytes: two short fields. */
export const MAX_IDENTITY_BYTES = 1024;

export const identityBytes = (id: string, manifest: ImageManifest): Buffer =>
  Buffer.from(JSON.stringify({ id, manifestSha256: manifestSha256(manifest) }, null, 2) + '\n');

/**
 * Reads an identity entry and ties it to the manifest it came with: an edited manifest under
 * an old identity would put one id on two different images, so it is refused (drop the entry
 * to publish the edit as a new image).
 */
export function parseIdentity(bytes: Buffer, manifest: ImageManifest): BundleIdentity {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new BundleError(IDENTITY_ENTRY, `invalid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BundleError(IDENTITY_ENTRY, 'must be an object {id, manifestSha256}');
  const { id, manifestSha256: digest, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw new BundleError(IDENTITY_ENTRY, `unknown field ${Object.keys(rest)[0]}; allowed: id, manifestSha256`);
  if (typeof id !== 'string' || !IMAGE_ID.test(id)) throw new BundleError(IDENTITY_ENTRY, '/id: must be a lowercase UUID v4');
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) throw new BundleError(IDENTITY_ENTRY, '/manifestSha256: must be 64 lowercase hex digits');
  const actual = manifestSha256(manifest);
  if (digest !== actual) {
    throw new BundleError(
      IDENTITY_ENTRY,
      `manifestSha256 ${digest.slice(0, 12)}… does not match manifest.json (${actual.slice(0, 12)}…): a changed manifest is a new image, so remove ${IDENTITY_ENTRY} to publish it under a new id`,
    );
  }
  return { id, manifestSha256: digest };
}
