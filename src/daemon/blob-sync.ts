import type { BlobStore } from '../catalog/blob-store.js';
import { fetchBlob, missingArtifacts, type PeerFetchLimits } from '../catalog/peer-fetch.js';
import type { Cmdb } from '../cmdb/index.js';
import type { Image } from '../cmdb/types.js';
import { nodeName, type Config } from '../config/index.js';
import type { Logger } from '../log.js';

const LIMITS: PeerFetchLimits = { headersTimeoutMs: 10_000, idleTimeoutMs: 30_000 };

export interface BlobSync {
  stop(): Promise<void>;
}

/**
 * Marks every image whose blobs this node already holds as ready here: at start, before the
 * boot door opens (images from before readiness was recorded, or a node renamed), and in every
 * sync pass. Returns the images still lacking blobs.
 */
export async function markImagesHeldHere(cmdb: Cmdb, blobs: BlobStore, node: string, logger: Logger): Promise<Image[]> {
  const lacking: Image[] = [];
  for (const id of cmdb.imageNodes.notReadyOn(node)) {
    const image = cmdb.images.find(id);
    if (!image) continue;
    if ((await missingArtifacts(image, blobs)).length > 0) lacking.push(image);
    else markReady(cmdb, image, node, logger);
  }
  return lacking;
}

/**
 * Every node.heartbeatSeconds (after the previous pass ends), fetches the blobs of the images
 * this node does not hold from live nodes that do, one image and one blob at a time, then marks
 * each image whose blobs are all here ready: the boot door boots machines into it from then on.
 * A peer that fails (unreachable, timed out, a blob that does not match its sha256) is logged
 * and the next one tried; what is still missing is tried again at the next pass.
 */
export function startBlobSync(cmdb: Cmdb, blobs: BlobStore, config: Config, logger: Logger): BlobSync {
  const node = nodeName(config);
  const log = logger.child({ component: 'blob-sync', node });
  const abort = new AbortController();
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();

  const fetchImage = async (image: Image) => {
    const holders = cmdb.imageNodes.holders(image.id, node, Date.now() - config.node.deadAfterSeconds * 1000);
    if (holders.length === 0) {
      log.debug({ image: image.id }, 'no live node holds this image yet');
      return;
    }
    for (const artifact of await missingArtifacts(image, blobs)) {
      let fetched = false;
      for (const holder of holders) {
        if (abort.signal.aborted) return;
        try {
          await fetchBlob(holder.url, image, artifact, blobs, LIMITS, abort.signal);
          log.info({ image: image.id, file: artifact.name, bytes: artifact.size, from: holder.node }, 'fetched a blob from a peer');
          fetched = true;
          break;
        } catch (err) {
          if (abort.signal.aborted) return;
          log.warn({ image: image.id, file: artifact.name, from: holder.node, url: holder.url, err: (err as Error).message }, 'could not fetch a blob from this peer; trying the next one, and again later');
        }
      }
      if (!fetched) return;
    }
    if ((await missingArtifacts(image, blobs)).length === 0) markReady(cmdb, image, node, log);
  };

  const pass = async () => {
    try {
      for (const image of await markImagesHeldHere(cmdb, blobs, node, log)) {
        if (abort.signal.aborted) return;
        await fetchImage(image);
      }
    } catch (err) {
      log.warn({ err }, 'blob sync pass failed; trying again later');
    }
  };
  const schedule = () => {
    if (abort.signal.aborted) return;
    timer = setTimeout(() => {
      running = pass().then(schedule);
    }, config.node.heartbeatSeconds * 1000);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      abort.abort();
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

function markReady(cmdb: Cmdb, image: Image, node: string, logger: Logger): void {
  try {
    cmdb.tx(() => cmdb.imageNodes.markReady(image.id, node));
    logger.info({ image: image.id, name: image.name, version: image.version, node }, 'image ready on this node: every blob is here');
  } catch (err) {
    // Deleted meanwhile (its row is gone, so the key refuses it), or the CMDB is away: the next pass sees.
    logger.warn({ image: image.id, err: (err as Error).message }, 'could not mark the image ready on this node');
  }
}
