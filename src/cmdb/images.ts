import type { ImageManifest } from '../catalog/manifest.js';
import type { SqlDb } from './sql.js';
import { CmdbError, conflict, invalid, notFound } from './errors.js';
import type { Actor, Channel, ChannelChange, Image, ImageReferences, ImageSelector, ImageSummary } from './types.js';
import { iso } from './util.js';
import { checkChannel, checkImageName, IMAGE_ID } from './validate.js';

interface ImageRow {
  id: string;
  name: string;
  version: string;
  os: string;
  arch: string;
  created_at: string;
  published_at: number;
  kernel_args: string;
  manifest: string;
}

interface HistoryRow {
  id: number;
  image_name: string;
  channel: string;
  action: 'promote' | 'rollback';
  image_id: string;
  previous_image_id: string | null;
  actor: string | null;
  at: number;
}

const toImage = (r: ImageRow): Image => {
  const manifest = JSON.parse(r.manifest) as ImageManifest;
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    os: r.os,
    arch: r.arch,
    createdAt: r.created_at,
    publishedAt: iso(r.published_at),
    kernelArgs: r.kernel_args,
    artifacts: manifest.artifacts.map(({ name, role, size, sha256 }) => ({ name, role, size, sha256 })),
    recipe: manifest.recipe,
    manifest,
  };
};

const summarize = ({ recipe: _recipe, manifest: _manifest, ...summary }: Image): ImageSummary => summary;

const toChange = (r: HistoryRow): ChannelChange => ({
  id: r.id,
  name: r.image_name,
  channel: r.channel,
  action: r.action,
  imageId: r.image_id,
  previousImageId: r.previous_image_id,
  actor: r.actor,
  at: iso(r.at),
});

/**
 * Images, their artifacts, and the channels that point at them. Images are immutable once
 * inserted; channels move by promote and rollback, and every move is kept in channel_history.
 */
export class SqlImageStore {
  private readonly byId;
  private readonly channelStmt;

  constructor(private readonly db: SqlDb) {
    // Boot scripts resolve a selector for every boot: keep both lookups prepared.
    this.byId = db.prepare('SELECT * FROM images WHERE id = ?');
    this.channelStmt = db.prepare('SELECT image_id FROM channels WHERE image_name = ? AND channel = ?');
  }

  find(id: string): Image | null {
    const row = this.byId.get(id) as ImageRow | undefined;
    return row ? toImage(row) : null;
  }

  get(id: string): Image {
    const image = this.find(id);
    if (!image) throw notFound(`image ${id}`);
    return image;
  }

  /**
   * The one image a reference names: its id, a unique prefix of it (as the CLI prints ids short),
   * NAME@CHANNEL (what the channel points at now) or NAME:VERSION. The forms cannot be mistaken
   * for one another: ids are hex and hyphens only, names hold a letter and never `@` or `:`.
   */
  byRef(ref: string): Image {
    const exact = this.find(ref);
    if (exact) return exact;
    const at = /^([^@:]+)@([^@:]+)$/.exec(ref);
    if (at) {
      const image = this.resolve({ name: at[1]!, channel: at[2]!, id: null });
      if (!image) throw notFound(`image ${ref} (no image on channel ${at[2]} of ${at[1]})`);
      return image;
    }
    const colon = /^([^@:]+):([^@:]+)$/.exec(ref);
    if (colon) {
      const image = this.findByVersion(colon[1]!, colon[2]!);
      if (!image) throw notFound(`image ${ref} (no version ${colon[2]} of ${colon[1]})`);
      return image;
    }
    // Not an id's form either: nothing can answer to it, which is "not found", with the forms that could.
    if (!/^[0-9a-f-]{4,36}$/.test(ref)) throw new CmdbError('not-found', null, `image ${ref} not found: give an image id or a prefix of at least 4 of its characters, NAME@CHANNEL or NAME:VERSION`);
    const rows = this.db.prepare('SELECT * FROM images WHERE id LIKE ? ORDER BY id LIMIT 6').all(`${ref}%`) as ImageRow[];
    if (rows.length === 0) throw notFound(`image ${ref}`);
    if (rows.length > 1) throw conflict('image', `${ref} is the start of several image ids (${rows.slice(0, 5).map((r) => `${r.id} ${r.name}:${r.version}`).join(', ')}${rows.length > 5 ? ', ...' : ''}): give more of it`);
    return toImage(rows[0]!);
  }

  findByVersion(name: string, version: string): Image | null {
    const row = this.db.prepare('SELECT * FROM images WHERE name = ? AND version = ?').get(name, version) as ImageRow | undefined;
    return row ? toImage(row) : null;
  }

  /**
   * What a machine's selector boots right now: a pinned id wins; otherwise the image its
   * channel (default `stable`) points at. Null when nothing matches.
   */
  resolve(selector: ImageSelector): Image | null {
    if (selector.id) return this.find(selector.id);
    if (!selector.name) return null;
    const row = this.channelStmt.get(selector.name, selector.channel ?? 'stable') as { image_id: string } | undefined;
    return row ? this.find(row.image_id) : null;
  }

  list(filter: { name?: string } = {}): ImageSummary[] {
    const rows = filter.name
      ? this.db.prepare('SELECT * FROM images WHERE name = ? ORDER BY published_at, id').all(filter.name)
      : this.db.prepare('SELECT * FROM images ORDER BY published_at, id').all();
    return (rows as ImageRow[]).map((r) => summarize(toImage(r)));
  }

  /** Adds a published image and its artifact rows; the caller's transaction makes them appear together. */
  insert(id: string, manifest: ImageManifest, publishedAt = Date.now()): Image {
    if (!IMAGE_ID.test(id)) throw invalid('id', 'must be a UUID v4');
    if (this.findByVersion(manifest.name, manifest.version)) {
      throw conflict('version', `image ${manifest.name} ${manifest.version} is already in the catalog`);
    }
    this.db
      .prepare(
        `INSERT INTO images (id, name, version, os, arch, created_at, published_at, kernel_args, manifest)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, manifest.name, manifest.version, manifest.os, manifest.arch, manifest.createdAt, publishedAt, manifest.kernelArgs, JSON.stringify(manifest));
    const artifact = this.db.prepare('INSERT INTO image_artifacts (image_id, name, role, size, sha256) VALUES (?, ?, ?, ?, ?)');
    for (const a of manifest.artifacts) artifact.run(id, a.name, a.role, a.size, a.sha256);
    return this.get(id);
  }

  references(id: string): ImageReferences {
    const channels = this.db.prepare('SELECT image_name, channel FROM channels WHERE image_id = ? ORDER BY 1, 2').all(id) as {
      image_name: string;
      channel: string;
    }[];
    const machines = this.db.prepare('SELECT id, hostname FROM machines WHERE image_id = ? ORDER BY id').all(id) as {
      id: number;
      hostname: string | null;
    }[];
    return {
      channels: channels.map((c) => `${c.image_name}@${c.channel}`),
      machines: machines.map((m) => m.hostname ?? `#${m.id}`),
    };
  }

  /** Deletes the rows of an image nothing points at; its blobs stay until gc. */
  remove(id: string): Image {
    const image = this.get(id);
    const refs = this.references(id);
    const who = [
      ...(refs.channels.length ? [`channel ${refs.channels.join(', ')}`] : []),
      ...(refs.machines.length ? [`pinned by machine ${refs.machines.slice(0, 10).join(', ')}${refs.machines.length > 10 ? ', …' : ''}`] : []),
    ];
    if (who.length > 0) throw conflict('id', `image ${image.name} ${image.version} (${id}) is still in use: ${who.join('; ')}`);
    this.db.prepare('DELETE FROM images WHERE id = ?').run(id);
    return image;
  }

  /** True when any image row lists this blob. */
  blobInUse(sha256: string): boolean {
    return this.db.prepare('SELECT 1 FROM image_artifacts WHERE sha256 = ? LIMIT 1').get(sha256) !== undefined;
  }

  /** Every blob some image lists: what gc keeps. */
  blobsInUse(): Set<string> {
    const rows = this.db.prepare('SELECT DISTINCT sha256 FROM image_artifacts').all() as { sha256: string }[];
    return new Set(rows.map((r) => r.sha256));
  }

  channels(): Channel[] {
    const rows = this.db
      .prepare(
        `SELECT c.image_name, c.channel, c.image_id, i.version, c.updated_at
         FROM channels c JOIN images i ON i.id = c.image_id ORDER BY c.image_name, c.channel`,
      )
      .all() as { image_name: string; channel: string; image_id: string; version: string; updated_at: number }[];
    return rows.map((r) => ({ name: r.image_name, channel: r.channel, imageId: r.image_id, version: r.version, updatedAt: iso(r.updated_at) }));
  }

  history(name: string, channel: string): ChannelChange[] {
    const rows = this.db
      .prepare('SELECT * FROM channel_history WHERE image_name = ? AND channel = ? ORDER BY id')
      .all(name, channel) as HistoryRow[];
    return rows.map(toChange);
  }

  /** Points `<image name>@<channel>` at this image. Promoting the image already there changes nothing. */
  promote(id: string, channelName: string, actor: Actor): ChannelChange | null {
    const channel = checkChannel('channel', channelName);
    if (!channel) throw invalid('channel', 'is required');
    const image = this.get(id);
    const current = this.current(image.name, channel);
    if (current === id) return null;
    return this.move(image.name, channel, 'promote', id, current, actor);
  }

  /**
   * Points the channel back at the image it showed before its last change. Replaying the
   * history as a stack (promote pushes, rollback pops) makes repeated rollbacks walk further
   * back; images deleted since are skipped.
   */
  rollback(nameText: string, channelName: string, actor: Actor): ChannelChange {
    const name = checkImageName('name', nameText);
    const channel = checkChannel('channel', channelName);
    if (!name || !channel) throw invalid(name ? 'channel' : 'name', 'is required');
    const current = this.current(name, channel);
    if (!current) throw notFound(`channel ${name}@${channel}`);
    const stack = this.stack(name, channel);
    stack.pop();
    while (stack.length > 0 && !this.find(stack[stack.length - 1]!)) stack.pop();
    const target = stack[stack.length - 1];
    if (!target) throw conflict('channel', `${name}@${channel} has no earlier image to roll back to`);
    return this.move(name, channel, 'rollback', target, current, actor);
  }

  private current(name: string, channel: string): string | null {
    return (this.channelStmt.get(name, channel) as { image_id: string } | undefined)?.image_id ?? null;
  }

  private stack(name: string, channel: string): string[] {
    const stack: string[] = [];
    for (const change of this.history(name, channel)) {
      if (change.action === 'promote') stack.push(change.imageId);
      // A rollback recorded its target; pop down to it (skipped deleted images included).
      else while (stack.length > 0 && stack[stack.length - 1] !== change.imageId) stack.pop();
    }
    return stack;
  }

  private move(name: string, channel: string, action: 'promote' | 'rollback', imageId: string, previous: string | null, actor: Actor): ChannelChange {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO channels (image_name, channel, image_id, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (image_name, channel) DO UPDATE SET image_id = excluded.image_id, updated_at = excluded.updated_at`,
      )
      .run(name, channel, imageId, now);
    const row = this.db
      .prepare(
        'INSERT INTO channel_history (image_name, channel, image_id, previous_image_id, action, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *',
      )
      .get(name, channel, imageId, previous, action, actor, now);
    return toChange(row as HistoryRow);
  }
}
