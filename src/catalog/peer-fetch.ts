import { request } from 'undici';
import type { Image, ImageArtifact } from '../cmdb/types.js';
import type { BlobStore } from './blob-store.js';
import { storeArtifact, type ReceiveLedger } from './receive.js';

export interface PeerFetchLimits {
  /** How long the peer may take to answer with headers. */
  headersTimeoutMs: number;
  /** How long the body may stall between two chunks (a large rootfs may take long in all, never stand still). */
  idleTimeoutMs: number;
}

/** The artifacts of an image whose blob the store lacks, one per blob. */
export async function missingArtifacts(image: Image, blobs: BlobStore): Promise<ImageArtifact[]> {
  const missing = new Map<string, ImageArtifact>();
  for (const a of image.artifacts) if (!missing.has(a.sha256) && !(await blobs.has(a.sha256))) missing.set(a.sha256, a);
  return [...missing.values()];
}

/**
 * Fetches one blob of an image from another node into the store. The peer serves it on the
 * artifact route machines boot from (GET /images/<id>/<file>: open, as the blobs are public and
 * content-addressed, so no node needs a token of another); its size and sha256 are checked
 * while it streams, exactly as a published bundle's artifacts are (storeArtifact), and a blob
 * that does not match is never linked into the store.
 */
export async function fetchBlob(peerUrl: string, image: Image, artifact: ImageArtifact, blobs: BlobStore, limits: PeerFetchLimits, signal: AbortSignal): Promise<void> {
  const url = `${peerUrl}/images/${encodeURIComponent(image.id)}/${encodeURIComponent(artifact.name)}`;
  const res = await request(url, { headersTimeout: limits.headersTimeoutMs, bodyTimeout: limits.idleTimeoutMs, signal });
  const ledger: ReceiveLedger = { claimed: [], created: [] };
  try {
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
    await storeArtifact(atMost(res.body, artifact.size, url), artifact, blobs, ledger);
  } finally {
    res.body.destroy();
    for (const sha256 of ledger.claimed) blobs.release(sha256);
  }
}

/** The bytes of `body`, failing as soon as there are more than `max` (a peer cannot fill the disk). */
async function* atMost(body: AsyncIterable<Uint8Array>, max: number, url: string): AsyncGenerator<Uint8Array> {
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > max) throw new Error(`${url} sent more than the ${max} bytes the manifest lists`);
    yield chunk;
  }
}
