import { PlanError } from './plan.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `90s`, `10m`, `1h`, `500ms`, or bare seconds (`120`), as milliseconds. */
export function parseDuration(field: string, text: string, maxMs = 24 * 3_600_000): number {
  const m = /^([0-9]{1,7})(ms|s|m|h)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2] ?? 's']! : NaN;
  if (!m || ms > maxMs) throw new PlanError(`${field}: expected a duration such as 30s, 10m or 1h, at most ${maxMs / 3_600_000} h (got '${text}')`);
  return ms;
}
