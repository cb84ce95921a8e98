import type { SqlDb } from './sql.js';
import { iso } from './util.js';

/** What a node says of itself at every heartbeat. */
export interface NodeBeat {
  name: string;
  /** Where its API and boot door answer. */
  url: string;
  version: string;
  /** The host and data dir it runs on: the same pair is the same node restarting (the data dir lock holds one process per pair). */
  host: string;
  dataDir: string;
  pid: number;
  /** Whether it serves DHCP. */
  dhcp: boolean;
  startedAt: number;
}

export interface NodeRecord {
  name: string;
  url: string;
  version: string;
  host: string;
  pid: number;
  dhcp: boolean;
  startedAt: string;
  heartbeatAt: string;
}

interface NodeRow {
  name: string;
  url: string;
  version: string;
  host: string;
  data_dir: string;
  pid: number;
  dhcp: number;
  started_at: number;
  heartbeat_at: number;
}

const toNode = (r: NodeRow): NodeRecord => ({
  name: r.name,
  url: r.url,
  version: r.version,
  host: r.host,
  pid: r.pid,
  dhcp: r.dhcp === 1,
  startedAt: iso(r.started_at),
  heartbeatAt: iso(r.heartbeat_at),
});

/** The livery nodes sharing this CMDB, each kept by its own heartbeat. */
export class SqlNodeStore {
  private readonly upsert;

  constructor(private readonly db: SqlDb) {
    this.upsert = db.prepare(
      `INSERT INTO nodes (name, url, version, host, data_dir, pid, dhcp, started_at, heartbeat_at)
       VALUES (@name, @url, @version, @host, @dataDir, @pid, @dhcp, @startedAt, @now)
       ON CONFLICT (name) DO UPDATE SET url = excluded.url, version = excluded.version, host = excluded.host,
         data_dir = excluded.data_dir, pid = excluded.pid, dhcp = excluded.dhcp, started_at = excluded.started_at,
         heartbeat_at = excluded.heartbeat_at`,
    );
  }

  /**
   * Records `node` as alive at `now`. Another node by that name (another host or data dir)
   * whose heartbeat is younger than `freshMs` is still alive: its name is refused, nothing written.
   */
  beat(node: NodeBeat, freshMs: number, now = Date.now()): void {
    const other = this.db.prepare('SELECT * FROM nodes WHERE name = ?').get(node.name) as NodeRow | undefined;
    if (other && (other.host !== node.host || other.data_dir !== node.dataDir) && now - other.heartbeat_at < freshMs) {
      throw new Error(
        `node name ${node.name} is taken by a node alive ${Math.round((now - other.heartbeat_at) / 1000)} s ago on ${other.host} (data dir ${other.data_dir}, ${other.url}): give this node another node.name`,
      );
    }
    this.upsert.run({ ...node, dhcp: node.dhcp ? 1 : 0, now });
  }

  list(): NodeRecord[] {
    return (this.db.prepare('SELECT * FROM nodes ORDER BY name').all() as NodeRow[]).map(toNode);
  }

  /**
   * Takes or keeps `role` for node `name` until `now + ttlMs`, unless another node holds it
   * unexpired (or whoever holds it, when `force`); returns whether `name` holds it now. Call it
   * in a write transaction.
   */
  lead(role: string, name: string, ttlMs: number, now = Date.now(), force = false): boolean {
    this.db
      .prepare(
        `INSERT INTO node_roles (role, node, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (role) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at
         WHERE node_roles.node = excluded.node OR node_roles.expires_at <= ? OR ? = 1`,
      )
      .run(role, name, now + ttlMs, now, force ? 1 : 0);
    return this.leaderOf(role, now) === name;
  }

  /** The node holding `role` unexpired at `now`, if any. */
  leaderOf(role: string, now = Date.now()): string | null {
    return (this.db.prepare('SELECT node FROM node_roles WHERE role = ? AND expires_at > ?').pluck().get(role, now) as string | undefined) ?? null;
  }

  /** Gives `role` up, if `name` holds it: another node may take it at once. */
  resign(role: string, name: string): void {
    this.db.prepare('DELETE FROM node_roles WHERE role = ? AND node = ?').run(role, name);
  }
}
