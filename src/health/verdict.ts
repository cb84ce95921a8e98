import type { Cmdb } from '../cmdb/index.js';
import type { Machine } from '../cmdb/types.js';
import type { HealthSpec } from './spec.js';

/**
 * Time the agent may take beyond the image's health timeout before its silence counts as a
 * failure: the last round of checks (a command may run 30 s) and curl's retries of the report.
 */
export const REPORT_GRACE_SECONDS = 60;

export type HealthState = 'not-booted' | 'pending' | 'healthy' | 'unhealthy';

export interface FailingCheck {
  check: string;
  output: string;
}

export interface HealthVerdict {
  state: HealthState;
  /** The image the machine last phoned home with. */
  imageId: string | null;
  /** Event id of that phone-home. */
  bootedEventId: number | null;
  bootedAt: string | null;
  /** When the verdict was reached (the report, or the deadline that passed). */
  at: string | null;
  reason: string | null;
  failing: FailingCheck[];
  /** For a pending verdict, when it turns unhealthy if no report comes (ms since the epoch); null otherwise. */
  decidesAt: number | null;
}

const HEALTH_EVENTS = ['healthy', 'unhealthy'];

/** The health checks an image declares (none for images built before health checks existed). */
export function imageHealth(cmdb: Cmdb, imageId: string | null): HealthSpec | null {
  if (!imageId) return null;
  return cmdb.images.find(imageId)?.manifest.health ?? null;
}

/**
 * A machine's health as of its latest boot after event `afterEventId`, read from the event
 * log: the agent's report for the image it booted; healthy at the phone-home when that image
 * has no checks; `unhealthy: no report` once the image's health timeout (plus grace) has
 * passed since the phone-home without a report.
 */
export function healthOf(cmdb: Cmdb, machine: Machine, opts: { afterEventId?: number; now?: number } = {}): HealthVerdict {
  const now = opts.now ?? Date.now();
  const booted = cmdb.events.latestOf(machine.macs, ['booted'], opts.afterEventId ?? 0);
  const none: HealthVerdict = { state: 'not-booted', imageId: null, bootedEventId: null, bootedAt: null, at: null, reason: null, failing: [], decidesAt: null };
  if (!booted) return none;
  const base = { ...none, imageId: booted.imageId, bootedEventId: booted.id, bootedAt: booted.at };
  const report = cmdb.events.latestOf(machine.macs, HEALTH_EVENTS, booted.id);
  if (report && report.imageId === booted.imageId) {
    const failing = (report.detail.failing as FailingCheck[] | undefined) ?? [];
    const state = report.type === 'healthy' ? 'healthy' : 'unhealthy';
    return { ...base, state, at: report.at, reason: state === 'healthy' ? null : failing.map((f) => f.check).join(', ') || 'reported unhealthy', failing };
  }
  const spec = imageHealth(cmdb, booted.imageId);
  if (!spec || spec.checks.length === 0) return { ...base, state: 'healthy', at: booted.at, reason: 'the image has no health checks: healthy once booted' };
  const deadline = Date.parse(booted.at) + (spec.timeoutSeconds + REPORT_GRACE_SECONDS) * 1000;
  if (now >= deadline) return { ...base, state: 'unhealthy', at: new Date(deadline).toISOString(), reason: 'no report', failing: [] };
  return { ...base, state: 'pending', reason: `waiting for the agent's report until ${new Date(deadline).toISOString()}`, decidesAt: deadline };
}
