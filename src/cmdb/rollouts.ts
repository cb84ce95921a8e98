import type { SqlDb } from './sql.js';
import { notFound } from './errors.js';
import type { ImageSelector } from './types.js';
import { iso } from './util.js';

export type RolloutState = 'running' | 'paused' | 'rolling-back' | 'succeeded' | 'failed' | 'aborted' | 'rolled-back';
export type WaveState = 'pending' | 'running' | 'soaking' | 'passed' | 'failed';
/**
 * A machine's step: pending (a later wave), queued (its wave runs), cycling (pinned, power
 * cycle asked for and not yet confirmed), booting, waiting-reboot (no BMC: pinned, waits for
 * the machine to reboot on its own), healthy, failed. `phase` says whether it is moving to the
 * rollout's image or back to its previous one.
 */
export type RolloutMachineState = 'pending' | 'queued' | 'cycling' | 'booting' | 'waiting-reboot' | 'healthy' | 'failed';

export const ACTIVE_ROLLOUT_STATES: readonly RolloutState[] = ['running', 'paused', 'rolling-back'];

export interface RolloutInput {
  imageId: string;
  /** The selector's canonical text (formatSelector). */
  selector: string;
  channel: string | null;
  /** The wave targets as given (`1,10%,50%,100%`). */
  targets: string;
  maxParallel: number;
  bootTimeoutMs: number;
  maxFailures: string;
  soakMs: number;
  actor: string;
}

export interface Rollout extends RolloutInput {
  id: number;
  state: RolloutState;
  /** The wave being worked on (0-based). */
  wave: number;
  reason: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface RolloutWave {
  wave: number;
  state: WaveState;
  soakUntil: number | null;
  reason: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface RolloutMachine {
  machineId: number;
  wave: number;
  position: number;
  phase: 'forward' | 'back';
  state: RolloutMachineState;
  /** The machine's image selection before the rollout pinned it. */
  previousImage: ImageSelector | null;
  expectedImageId: string | null;
  /** The boot that counts comes after this event. */
  sinceEventId: number | null;
  cycleConfirmed: boolean;
  cycles: number;
  deadlineAt: number | null;
  detail: Record<string, unknown>;
  updatedAt: string;
}

export type RolloutPatch = Partial<Pick<Rollout, 'state' | 'wave' | 'reason'>>;
export type WavePatch = Partial<Pick<RolloutWave, 'state' | 'soakUntil' | 'reason'>> & { started?: boolean; finished?: boolean };
export type MachinePatch = Partial<Omit<RolloutMachine, 'machineId' | 'wave' | 'position' | 'updatedAt'>>;

interface RolloutRow {
  id: number;
  image_id: string;
  selector: string;
  channel: string | null;
  waves: string;
  max_parallel: number;
  boot_timeout_ms: number;
  max_failures: string;
  soak_ms: number;
  state: RolloutState;
  wave: number;
  reason: string | null;
  actor: string;
  created_at: number;
  updated_at: number;
}

const toRollout = (r: RolloutRow): Rollout => ({
  id: r.id,
  imageId: r.image_id,
  selector: r.selector,
  channel: r.channel,
  targets: r.waves,
  maxParallel: r.max_parallel,
  bootTimeoutMs: r.boot_timeout_ms,
  maxFailures: r.max_failures,
  soakMs: r.soak_ms,
  state: r.state,
  wave: r.wave,
  reason: r.reason,
  actor: r.actor,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

const MACHINE_COLUMNS: Record<keyof MachinePatch, [string, (v: never) => unknown]> = {
  phase: ['phase', (v) => v],
  state: ['state', (v) => v],
  previousImage: ['previous_image', (v) => (v === null ? null : JSON.stringify(v))],
  expectedImageId: ['expected_image_id', (v) => v],
  sinceEventId: ['since_event_id', (v) => v],
  cycleConfirmed: ['cycle_confirmed', (v: boolean) => (v ? 1 : 0)],
  cycles: ['cycles', (v) => v],
  deadlineAt: ['deadline_at', (v) => v],
  detail: ['detail', (v) => JSON.stringify(v)],
};

/** Rollouts, their waves and each machine's step in them (migration 4). */
export class SqlRolloutStore {
  constructor(private readonly db: SqlDb) {}

  /** A new running rollout with its waves planned: every machine pending, wave 0 to start. */
  create(input: RolloutInput, waves: number[][]): Rollout {
    const now = Date.now();
    const id = this.db
      .prepare(
        `INSERT INTO rollouts (image_id, selector, channel, waves, max_parallel, boot_timeout_ms, max_failures, soak_ms, state, actor, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?) RETURNING id`,
      )
      .pluck()
      .get(input.imageId, input.selector, input.channel, input.targets, input.maxParallel, input.bootTimeoutMs, input.maxFailures, input.soakMs, input.actor, now, now) as number;
    const wave = this.db.prepare("INSERT INTO rollout_waves (rollout_id, wave, state) VALUES (?, ?, 'pending')");
    const machine = this.db.prepare("INSERT INTO rollout_machines (rollout_id, machine_id, wave, position, state, updated_at) VALUES (?, ?, ?, ?, 'pending', ?)");
    waves.forEach((ids, w) => {
      wave.run(id, w);
      ids.forEach((machineId, position) => machine.run(id, machineId, w, position, now));
    });
    return this.get(id);
  }

  find(id: number): Rollout | null {
    const row = this.db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as RolloutRow | undefined;
    return row ? toRollout(row) : null;
  }

  get(id: number): Rollout {
    const r = this.find(id);
    if (!r) throw notFound(`rollout ${id}`);
    return r;
  }

  list(limit = 100): Rollout[] {
    return (this.db.prepare('SELECT * FROM rollouts ORDER BY id DESC LIMIT ?').all(limit) as RolloutRow[]).map(toRollout);
  }

  /** Rollouts the engine still drives, oldest first. */
  active(): Rollout[] {
    const d = this.db.dialect;
    return (this.db.prepare(`SELECT * FROM rollouts WHERE ${d.inList('state', 'text')} ORDER BY id`).all(d.list(ACTIVE_ROLLOUT_STATES)) as RolloutRow[]).map(toRollout);
  }

  /** Machines in an active rollout other than `except`: a machine is in one running rollout at a time. */
  machinesBusyElsewhere(machineIds: number[], except: number | null = null): number[] {
    const d = this.db.dialect;
    return this.db
      .prepare(
        `SELECT DISTINCT rm.machine_id FROM rollout_machines rm JOIN rollouts r ON r.id = rm.rollout_id
         WHERE r.state IN ('running', 'paused', 'rolling-back') AND r.id != ? AND ${d.inList('rm.machine_id', 'int')}`,
      )
      .pluck()
      .all(except ?? 0, d.list(machineIds)) as number[];
  }

  waves(id: number): RolloutWave[] {
    const rows = this.db.prepare('SELECT * FROM rollout_waves WHERE rollout_id = ? ORDER BY wave').all(id) as {
      wave: number;
      state: WaveState;
      soak_until: number | null;
      reason: string | null;
      started_at: number | null;
      finished_at: number | null;
    }[];
    return rows.map((r) => ({
      wave: r.wave,
      state: r.state,
      soakUntil: r.soak_until,
      reason: r.reason,
      startedAt: r.started_at === null ? null : iso(r.started_at),
      finishedAt: r.finished_at === null ? null : iso(r.finished_at),
    }));
  }

  machines(id: number, wave?: number): RolloutMachine[] {
    const rows = (
      wave === undefined
        ? this.db.prepare('SELECT * FROM rollout_machines WHERE rollout_id = ? ORDER BY wave, position').all(id)
        : this.db.prepare('SELECT * FROM rollout_machines WHERE rollout_id = ? AND wave = ? ORDER BY position').all(id, wave)
    ) as {
      machine_id: number;
      wave: number;
      position: number;
      phase: 'forward' | 'back';
      state: RolloutMachineState;
      previous_image: string | null;
      expected_image_id: string | null;
      since_event_id: number | null;
      cycle_confirmed: number;
      cycles: number;
      deadline_at: number | null;
      detail: string;
      updated_at: number;
    }[];
    return rows.map((r) => ({
      machineId: r.machine_id,
      wave: r.wave,
      position: r.position,
      phase: r.phase,
      state: r.state,
      previousImage: r.previous_image === null ? null : JSON.parse(r.previous_image),
      expectedImageId: r.expected_image_id,
      sinceEventId: r.since_event_id,
      cycleConfirmed: r.cycle_confirmed === 1,
      cycles: r.cycles,
      deadlineAt: r.deadline_at,
      detail: JSON.parse(r.detail),
      updatedAt: iso(r.updated_at),
    }));
  }

  update(id: number, patch: RolloutPatch): void {
    const r = this.get(id);
    this.db
      .prepare('UPDATE rollouts SET state = ?, wave = ?, reason = ?, updated_at = ? WHERE id = ?')
      .run(patch.state ?? r.state, patch.wave ?? r.wave, patch.reason !== undefined ? patch.reason : r.reason, Date.now(), id);
  }

  updateWave(id: number, wave: number, patch: WavePatch): void {
    const now = Date.now();
    const columns: [string, unknown][] = [];
    if (patch.state !== undefined) columns.push(['state', patch.state]);
    if (patch.soakUntil !== undefined) columns.push(['soak_until', patch.soakUntil]);
    if (patch.reason !== undefined) columns.push(['reason', patch.reason]);
    if (patch.started) columns.push(['started_at', now]);
    if (patch.finished) columns.push(['finished_at', now]);
    if (columns.length === 0) return;
    const sets = columns.map(([c]) => `${c} = ?`).join(', ');
    this.db.prepare(`UPDATE rollout_waves SET ${sets} WHERE rollout_id = ? AND wave = ?`).run(...columns.map(([, v]) => v), id, wave);
  }

  updateMachine(id: number, machineId: number, patch: MachinePatch): void {
    const sets = ['updated_at = ?'];
    const args: unknown[] = [Date.now()];
    for (const [key, value] of Object.entries(patch) as [keyof MachinePatch, never][]) {
      const [column, encode] = MACHINE_COLUMNS[key];
      sets.push(`${column} = ?`);
      args.push(encode(value));
    }
    this.db.prepare(`UPDATE rollout_machines SET ${sets.join(', ')} WHERE rollout_id = ? AND machine_id = ?`).run(...args, id, machineId);
  }
}
