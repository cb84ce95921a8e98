import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { conflict } from '../cmdb/errors.js';
import type { Actor, ChannelChange, Image, ImageArtifact } from '../cmdb/types.js';
import type { Cmdb } from '../cmdb/index.js';
import { checkChannel } from '../cmdb/validate.js';
import { nodeName, type Config } from '../config/index.js';
import { BlobStore } from './blob-store.js';
import { refuseDuplicate } from './duplicates.js';
import { exportBundle, type ExportedBundle } from './export.js';
import { collectGarbage, type GcReport } from './gc.js';
import { receiveBundle, type ReceiveLedger } from './receive.js';
import { refuseUnsignedForSecureBoot } from '../boot/secure-boot-users.js';

/** One artifact as the artifact route serves it. */
export interface ServedArtifact extends ImageArtifact {
  path: string;
}

// Images are immutable, so id → artifacts can be cached for good; this bound only stops a
// stream of distinct ids from growing the map without end.
const ARTIFACT_CACHE_IMAGES = 10_000;

/**
 * The image catalog: publishing bundles into the blob store, channels, deletion, garbage
 * collection, export, and artifact lookups for the boot path. Rows go through the ImageStore;
 * this class keeps the blobs on disk consistent with them.
 */
export class Catalog {
  readonly blobs: BlobStore;
  private readonly artifactCache = new Map<string, Map<string, ServedArtifact>>();

  constructor(
    private readonly cmdb: Cmdb,
    /** The whole config: whether a channel may move is a boot decision (see refuseUnsignedForSecureBoot). */
    private readonly config: Config,
  ) {
    this.blobs = new BlobStore(join(config.dataDir, 'blobs'));
  }

  get limits(): Config['catalog'] {
    return this.config.catalog;
  }

  /**
   * Publishes a bundle stream. The image row is inserted last, in one transaction, after every
   * blob is on disk; a publish that fails or is cut off leaves the catalog as it was. A bundle
   * from `export` keeps its image's id (see identity.ts and refuseDuplicate).
   */
  async publish(source: Readable, opts: { actor: Actor; channel?: string }): Promise<Image> {
    const channel = opts.channel === undefined ? null : checkChannel('channel', opts.channel);
    const ledger: ReceiveLedger = { claimed: [], created: [] };
    let image: Image;
    try {
      const { manifest, identity } = await receiveBundle(source, this.blobs, this.config.catalog, ledger, (m, i) => refuseDuplicate(this.cmdb.images, m, i));
      image = this.cmdb.change(
        opts.actor,
        'image.publish',
        (published) => published.id,
        () => {
          // A gc in another process may have removed a blob this publish found already present.
          const gone = manifest.artifacts.find((a) => !existsSync(this.blobs.path(a.sha256)));
          if (gone) throw conflict('bundle', `blob of ${gone.name} was removed by a concurrent gc; publish again`);
          refuseDuplicate(this.cmdb.images, manifest, identity);
          // A copy of an image keeps the id it has everywhere else; only a new image gets a new one.
          const published = this.cmdb.images.insert(identity?.id ?? randomUUID(), manifest);
          // Every blob is on this node's disk (checked above): machines may boot it here at once.
          this.cmdb.imageNodes.markReady(published.id, nodeName(this.config));
          this.cmdb.events.add({ type: 'image-published', imageId: published.id, detail: { name: published.name, version: published.version } });
          if (channel) this.promoteIn(published.id, channel, opts.actor);
          return published;
        },
        { name: manifest.name, version: manifest.version, channel },
      );
    } catch (err) {
      this.releaseClaims(ledger);
      this.discardCreated(ledger);
      throw err;
    }
    this.releaseClaims(ledger);
    return image;
  }

  promote(id: string, channel: string, actor: Actor): ChannelChange | null {
    return this.cmdb.change(actor, 'image.promote', `${id}@${channel}`, () => this.promoteIn(id, channel, actor), { channel });
  }

  rollback(name: string, channel: string, actor: Actor): ChannelChange {
    return this.cmdb.change(actor, 'image.rollback', `${name}@${channel}`, () => {
      const change = this.cmdb.images.rollback(name, channel, actor);
      refuseUnsignedForSecureBoot(this.cmdb.images.get(change.imageId), channel, this.cmdb, this.config);
      this.cmdb.events.add({
        type: 'image-rolled-back',
        imageId: change.imageId,
        detail: { name, channel, from: change.previousImageId },
      });
      return change;
    });
  }

  /** Deletes an image nothing refers to; its blobs stay until gc. */
  remove(id: string, actor: Actor): Image {
    const image = this.cmdb.change(actor, 'image.delete', id, () => {
      const removed = this.cmdb.images.remove(id);
      this.cmdb.events.add({ type: 'image-deleted', imageId: id, detail: { name: removed.name, version: removed.version } });
      return removed;
    });
    this.artifactCache.delete(id);
    return image;
  }

  async gc(actor: Actor): Promise<GcReport> {
    const report = await collectGarbage(this.cmdb, this.blobs);
    this.cmdb.audit.record(actor, 'image.gc', 'blobs', { ...report });
    return report;
  }

  exportBundle(id: string, omit?: ReadonlySet<string>): ExportedBundle & { image: Image } {
    const image = this.cmdb.images.get(id);
    return { image, ...exportBundle(image, this.blobs, omit) };
  }

  /** The boot path's lookup: one prepared query per image, then memory. Null when unknown. */
  artifact(imageId: string, file: string): ServedArtifact | null {
    let files = this.artifactCache.get(imageId);
    if (!files) {
      const image = this.cmdb.images.find(imageId);
      if (!image) return null;
      if (this.artifactCache.size >= ARTIFACT_CACHE_IMAGES) this.artifactCache.clear();
      files = new Map(image.artifacts.map((a) => [a.name, { ...a, path: this.blobs.path(a.sha256) }]));
      this.artifactCache.set(imageId, files);
    }
    return files.get(file) ?? null;
  }

  /** A blob vanished under a cached image (deleted and collected elsewhere): forget the image. */
  forget(imageId: string): void {
    this.artifactCache.delete(imageId);
  }

  private promoteIn(id: string, channel: string, actor: Actor): ChannelChange | null {
    const change = this.cmdb.images.promote(id, channel, actor);
    if (change) {
      refuseUnsignedForSecureBoot(this.cmdb.images.get(id), channel, this.cmdb, this.config);
      this.cmdb.events.add({ type: 'image-promoted', imageId: id, detail: { name: change.name, channel, from: change.previousImageId } });
    }
    return change;
  }

  private releaseClaims(ledger: ReceiveLedger): void {
    for (const sha256 of ledger.claimed.splice(0)) this.blobs.release(sha256);
  }

  /**
   * Removes the blobs a failed publish created, unless an image row or another publish in
   * progress now counts on them. Runs in a write transaction for the same reason as gc.
   */
  private discardCreated(ledger: ReceiveLedger): void {
    if (ledger.created.length === 0) return;
    this.cmdb.tx(() => {
      for (const sha256 of ledger.created) {
        if (!this.blobs.isClaimed(sha256) && !this.cmdb.images.blobInUse(sha256)) rmSync(this.blobs.path(sha256), { force: true });
      }
    });
  }
}
