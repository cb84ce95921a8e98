/**
 * The rollout planner: pure functions, no I/O. A rollout's machines are put in a stable order
 * (canaries first, then round-robin across racks and sites so every wave spans the fleet)
 * and cut into waves at cumulative targets (`1,10%,50%,100%`: the first machine, then up to
 * 10 % of all, then 50 %, then the rest).
 */

export interface PlannedMachine {
  id: number;
  site: string | null;
  labels: Record<string, string>;
}

/** One item of `--waves`: a count of machines in total so far, or a percentage of all. */
export type WaveTarget = { count: number } | { percent: number };

export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}

/** `1,10%,50%,100%` → targets; the last must cover every machine (100%). */
export function parseWaves(text: string): WaveTarget[] {
  const items = text.split(',').map((t) => t.trim());
  const targets = items.map((item): WaveTarget => {
    const pct = /^([0-9]{1,3}(?:\.[0-9]+)?)%$/.exec(item);
    if (pct && Number(pct[1]) > 0 && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
    if (/^[1-9][0-9]{0,6}$/.test(item)) return { count: Number(item) };
    throw new PlanError(`waves: expected machine counts or percentages such as '1,10%,50%,100%' (got '${item}')`);
  });
  const last = targets[targets.length - 1]!;
  if (!('percent' in last) || last.percent !== 100) throw new PlanError(`waves: the last wave must be 100% so every selected machine is in one (got '${items[items.length - 1]}')`);
  return targets;
}

/** Machines in rollout order: canaries (label canary=true) by id, then one per rack/site group in turn. */
export function orderMachines(machines: readonly PlannedMachine[]): PlannedMachine[] {
  const byId = [...machines].sort((a, b) => a.id - b.id);
  const canaries = byId.filter((m) => m.labels.canary === 'true');
  const groups = new Map<string, PlannedMachine[]>();
  for (const m of byId) {
    if (m.labels.canary === 'true') continue;
    const key = `${m.site ?? m.labels.site ?? ''}\u0000${m.labels.rack ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const queues = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, q]) => q);
  const spread: PlannedMachine[] = [];
  for (let i = 0; spread.length + canaries.length < byId.length; i++) for (const q of queues) if (i < q.length) spread.push(q[i]!);
  return [...canaries, ...spread];
}

/**
 * How many machines each wave has in total so far. Percentages round up, so a wave with a
 * percentage of a small fleet still gets a machine; a target at or below the previous one
 * makes no wave (it is dropped rather than run empty).
 */
export function cumulativeTargets(targets: readonly WaveTarget[], total: number): number[] {
  const out: number[] = [];
  let done = 0;
  for (const t of targets) {
    const want = Math.min(total, 'count' in t ? t.count : Math.ceil((t.percent * total) / 100 - 1e-9));
    if (want > done) out.push((done = want));
  }
  return out;
}

/** The waves: machine ids in rollout order, each selected machine in exactly one. */
export function planWaves(machines: readonly PlannedMachine[], targets: readonly WaveTarget[]): number[][] {
  const ordered = orderMachines(machines).map((m) => m.id);
  const waves: number[][] = [];
  let from = 0;
  for (const upto of cumulativeTargets(targets, ordered.length)) {
    waves.push(ordered.slice(from, upto));
    from = upto;
  }
  return waves;
}

/** A machine's step in its wave, as far as pacing cares. */
export type PaceState = 'queued' | 'booting' | 'done';

/**
 * Which queued machines may start now: as many as keep the machines booting at once at or
 * below maxParallel, in wave order.
 */
export function admit(states: readonly PaceState[], maxParallel: number): number[] {
  const booting = states.filter((s) => s === 'booting').length;
  const room = Math.max(0, maxParallel - booting);
  const out: number[] = [];
  for (let i = 0; i < states.length && out.length < room; i++) if (states[i] === 'queued') out.push(i);
  return out;
}

export type FailureBudget = { count: number } | { percent: number };

/** `--max-failures`: `0` (default), a count per wave, or a percentage of each wave. */
export function parseMaxFailures(text: string): FailureBudget {
  const pct = /^([0-9]{1,3}(?:\.[0-9]+)?)%$/.exec(text.trim());
  if (pct && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
  if (/^[0-9]{1,7}$/.test(text.trim())) return { count: Number(text.trim()) };
  throw new PlanError(`maxFailures: expected a count or a percentage of each wave such as 0, 2 or 10% (got '${text}')`);
}

/** Failures a wave of this size may have and still pass: percentages round down, so 10% of 5 allows none. */
export function allowedFailures(budget: FailureBudget, waveSize: number): number {
  return 'count' in budget ? budget.count : Math.floor((budget.percent * waveSize) / 100 + 1e-9);
}
