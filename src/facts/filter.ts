import { invalid } from '../cmdb/errors.js';

export type FactOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

/** `memory_gb>=256`: a flat fact key, an operator, a value (a number compares as a number). */
export interface FactFilter {
  key: string;
  op: FactOp;
  value: string | number;
}

export const FACT_KEY = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const OPS: readonly FactOp[] = ['!=', '<=', '>=', '=', '<', '>'];

/** Parses one `--fact` / `?fact=` term; throws a CmdbError naming `field` (HTTP 400). */
export function parseFactFilter(text: string, field = 'fact'): FactFilter {
  const m = /^\s*([^<>=!\s]+)\s*(!=|<=|>=|=|<|>)\s*(.*?)\s*$/.exec(text);
  if (!m) throw invalid(field, `cannot read ${JSON.stringify(text)}: expected KEY OP VALUE with OP one of ${OPS.join(' ')}, e.g. memory_gb>=256`);
  const [, key, op, raw] = m as unknown as [string, string, FactOp, string];
  if (!FACT_KEY.test(key)) throw invalid(field, `invalid fact key ${JSON.stringify(key)} (e.g. memory_gb, cpu.threads, cpu.vendor)`);
  if (raw === '' || raw.length > 256) throw invalid(field, `${key}${op} needs a value of 1-256 characters`);
  const numeric = /^-?\d+(\.\d+)?$/.test(raw);
  if (!numeric && op !== '=' && op !== '!=') throw invalid(field, `${key}${op}${raw}: ${op} compares numbers; use = or != for text`);
  return { key, op, value: numeric ? Number(raw) : raw };
}
