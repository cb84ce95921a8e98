import type { SqlDb } from './sql.js';

/** A node that holds an image, as another node fetches its blobs from it. */
export interface ImageHolder {
  node: string;
  url: string;
}

/**
 * Which node holds every blob of which image (issue #28). A node marks an image when it has
 * published or pulled it, or fetched its blobs from a peer; a row goes with its image.
 */
export class SqlImageNodeStore {
  constructor(private readonly db: SqlDb) {}

  /** Records that `node` holds every blob of the image now (again: a no-op). */
  markReady(imageId: string, node: string, now = Date.now()): void {
    this.db.prepare('INSERT INTO image_nodes (image_id, node, ready_at) VALUES (?, ?, ?) ON CONFLICT (image_id, node) DO NOTHING').run(imageId, node, now);
  }

  isReady(imageId: string, node: string): boolean {
    return this.db.prepare('SELECT 1 FROM image_nodes WHERE image_id = ? AND node = ?').pluck().get(imageId, node) !== undefined;
  }

  /** The nodes holding the image, by name. */
  readyOn(imageId: string): string[] {
    return this.db.prepare('SELECT node FROM image_nodes WHERE image_id = ? ORDER BY node').pluck().all(imageId) as string[];
  }

  /** Ids of the images `node` does not hold yet, oldest first. */
  notReadyOn(node: string): string[] {
    return this.db
      .prepare('SELECT id FROM images WHERE NOT EXISTS (SELECT 1 FROM image_nodes r WHERE r.image_id = images.id AND r.node = ?) ORDER BY published_at, id')
      .pluck()
      .all(node) as string[];
  }

  /** Nodes other than `self` that hold the image and were alive at `aliveSince` or later, freshest heartbeat first. */
  holders(imageId: string, self: string, aliveSince: number): ImageHolder[] {
    return this.db
      .prepare(
        `SELECT n.name AS node, n.url FROM image_nodes r JOIN nodes n ON n.name = r.node
         WHERE r.image_id = ? AND r.node <> ? AND n.heartbeat_at >= ? ORDER BY n.heartbeat_at DESC, n.name`,
      )
      .all(imageId, self, aliveSince) as ImageHolder[];
  }
}
