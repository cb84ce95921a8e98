/** The image catalog's public face: the Catalog service and the pieces routes and the CLI reuse. */
export { sendFileRange } from './file-sender.js';
export { OpenBlobs } from './open-blobs.js';
export { Catalog, type ServedArtifact } from './catalog.js';
export { BundleError, DuplicateImageError } from './errors.js';
export type { GcReport } from './gc.js';
export { etagMatches, parseRange, type ByteRange } from './range.js';
export { manifestSha256 } from './manifest.js';
