import { invalid } from './errors.js';

/**
 * A machine selector, as data: every term must hold (AND); a term holds when the machine's
 * value for its key is one of the term's values. `site` and `subnet` are the machine's own
 * fields, `facts.<key>` one of its hardware facts (`facts.cpu.vendor=AMD`, see src/facts/flat.ts);
 * any other key is a label. Written `role=kvm,site=par1` or `role in (kvm,gpu),site=par1`.
 */
export interface SelectorTerm {
  key: string;
  /** Sorted, without repeats; one value is plain equality. */
  values: string[];
}
export type Selector = SelectorTerm[];

/** What a selector is matched against. */
export interface SelectorSubject {
  site: string | null;
  subnet: string | null;
  labels: Record<string, string>;
  /** The machine's latest hardware facts, flattened; absent or null: none reported. */
  facts?: Record<string, string | number> | null;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const VALUE = /^[A-Za-z0-9._:/+-]{1,256}$/;
const MAX_TERMS = 32;
const MAX_VALUES = 256;

/** The one parser for selector text (CLI, API, CMDB rows); throws a CmdbError naming `field`. */
export function parseSelector(text: unknown, field = 'selector'): Selector {
  if (typeof text !== 'string' || text.trim() === '') throw invalid(field, 'must name at least one term, e.g. role=kvm,site=par1');
  const terms: Selector = [];
  let rest = text.trim();
  while (rest !== '') {
    const m = /^([^\s=,()!]+)\s*(?:(=)\s*([^\s,()]*)|\s+in\s*\(([^()]*)\))\s*(?:,\s*|$)/.exec(rest);
    if (!m) throw invalid(field, `cannot read ${JSON.stringify(rest)}: expected key=value or key in (a,b), separated by commas`);
    const key = m[1]!;
    if (!KEY.test(key)) throw invalid(field, `invalid key ${JSON.stringify(key)} (letters, digits, . _ / -)`);
    if (terms.some((t) => t.key === key)) throw invalid(field, `key ${key} is given twice; use ${key} in (a,b) for several values`);
    const raw = m[2] ? [m[3]!] : m[4]!.split(',').map((v) => v.trim());
    for (const v of raw) if (!VALUE.test(v)) throw invalid(field, `invalid value ${JSON.stringify(v)} for ${key} (1-256 of letters, digits, . _ : / + -)`);
    const values = [...new Set(raw)].sort();
    if (values.length > MAX_VALUES) throw invalid(field, `at most ${MAX_VALUES} values per key`);
    terms.push({ key, values });
    if (terms.length > MAX_TERMS) throw invalid(field, `at most ${MAX_TERMS} terms`);
    if (m[0].trimEnd().endsWith(',') && rest.slice(m[0].length).trim() === '') throw invalid(field, 'ends with a comma');
    rest = rest.slice(m[0].length);
  }
  return terms.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The canonical text of a selector: keys sorted, values sorted; parseSelector reads it back. */
export function formatSelector(selector: Selector): string {
  return selector.map((t) => (t.values.length === 1 ? `${t.key}=${t.values[0]}` : `${t.key} in (${t.values.join(',')})`)).join(',');
}

function valueOf(subject: SelectorSubject, key: string): string | null {
  if (key === 'site') return subject.site;
  if (key === 'subnet') return subject.subnet;
  if (key.startsWith('facts.')) {
    const fact = subject.facts?.[key.slice('facts.'.length)];
    return fact === undefined ? null : String(fact);
  }
  return subject.labels[key] ?? null;
}

/** The first term the subject fails, with what it has instead (null: every term holds). */
export function firstMismatch(selector: Selector, subject: SelectorSubject): { term: SelectorTerm; actual: string | null } | null {
  for (const term of selector) {
    const actual = valueOf(subject, term.key);
    if (actual === null || !term.values.includes(actual)) return { term, actual };
  }
  return null;
}

export const matchesSelector = (selector: Selector, subject: SelectorSubject): boolean => firstMismatch(selector, subject) === null;
