import type { SqlDb } from './sql.js';
import { machineConditions, selectMachines, toMachine, type MachineRow } from './machine-rows.js';
import type { Machine, MachineState } from './types.js';

export interface FleetFilter {
  state?: MachineState;
  site?: string;
  labels?: Record<string, string>;
  /** An image name, `name@channel`, or an image id. */
  image?: string;
  /** Found in the hostname, a MAC, the site, the address or a label. */
  text?: string;
  offset?: number;
  limit?: number;
}

/** What a machine boots, as the fleet counts it: the pinned image id, else `name@channel`. */
const IMAGE_KEY = `coalesce(m.image_id, m.image_name || '@' || coalesce(m.image_channel, 'stable'), m.image_name, '(none)')`;

const likeEscape = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * The fleet as the console shows it: a filtered page of machines with the total, and counts
 * by state and by image. Pages are read with LIMIT/OFFSET: the console pages through the
 * whole fleet by number, and a page of a few hundred rows costs milliseconds at 10,000 machines.
 */
export class SqlFleetView {
  constructor(private readonly db: SqlDb) {}

  page(filter: FleetFilter): { machines: Machine[]; total: number } {
    const { where, args } = machineConditions(this.db.dialect, filter);
    if (filter.image) {
      where.push(`(m.image_id = ? OR m.image_name = ? OR ${IMAGE_KEY} = ?)`);
      args.push(filter.image, filter.image, filter.image);
    }
    if (filter.text) {
      const like = likeEscape(filter.text.toLowerCase());
      where.push(
        `(lower(coalesce(m.hostname, '')) LIKE ? ESCAPE '\\' OR lower(coalesce(m.site, '')) LIKE ? ESCAPE '\\' OR coalesce(m.ip, '') LIKE ? ESCAPE '\\'
          OR lower(m.labels) LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM machine_macs x WHERE x.machine_id = m.id AND x.mac LIKE ? ESCAPE '\\'))`,
      );
      args.push(like, like, like, like, like);
    }
    const whereSql = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const offset = Math.max(filter.offset ?? 0, 0);
    const rows = this.db.prepare(`${selectMachines(this.db.dialect)} ${whereSql} ORDER BY m.id LIMIT ${limit} OFFSET ${offset}`).all(...args) as MachineRow[];
    const total = (this.db.prepare(`SELECT count(*) FROM machines m ${whereSql}`).pluck().get(...args) as number) ?? 0;
    return { machines: rows.map(toMachine), total };
  }

  /** Machines per state and per image (pinned id or `name@channel`), across the whole fleet. */
  counts(): { byState: Record<string, number>; byImage: Record<string, number> } {
    const byState = this.db.prepare('SELECT state AS k, count(*) AS n FROM machines GROUP BY state ORDER BY state').all() as { k: string; n: number }[];
    const byImage = this.db.prepare(`SELECT ${IMAGE_KEY} AS k, count(*) AS n FROM machines m WHERE m.state != 'retired' GROUP BY k ORDER BY n DESC LIMIT 20`).all() as { k: string; n: number }[];
    return { byState: Object.fromEntries(byState.map((r) => [r.k, r.n])), byImage: Object.fromEntries(byImage.map((r) => [r.k, r.n])) };
  }

  /** Machines (not retired) that follow `name@channel` without a pinned image: they boot whatever the channel points at. */
  followers(name: string, channel: string): number {
    return this.db
      .prepare("SELECT count(*) FROM machines WHERE image_name = ? AND coalesce(image_channel, 'stable') = ? AND image_id IS NULL AND state != 'retired'")
      .pluck()
      .get(name, channel) as number;
  }

  /** Machines (not retired) pinned to this image id. */
  pinned(imageId: string): number {
    return this.db.prepare("SELECT count(*) FROM machines WHERE image_id = ? AND state != 'retired'").pluck().get(imageId) as number;
  }
}
