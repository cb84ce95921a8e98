/**
 * The one text form of a `key=value` list (labels and vars), used by CSV cells, CLI flags and
 * `?label=` queries, and printed by the CLI so that what is shown reads back as what is stored:
 *
 *   list  = pair *( ("," / ";") pair )      spaces around pairs are ignored
 *   pair  = key "=" value
 *   value = bare / JSON string              bare: no , ; = " \ and no spaces at either end
 *
 * `rack=r0,role=compute` is two labels; a value holding a separator, '=', a quote or a
 * backslash must be quoted (`note="a,b"`). Anything else is refused, never guessed.
 */
import { invalid } from './errors.js';

const SEPARATOR = /[,;]/;
const KEY = /[^,;="\\\s]/;
const BARE_FORBIDDEN = /[,;="\\]/;

export function parseKeyValues(field: string, text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const fail = (why: string): never => {
    throw invalid(field, `${why} at character ${i + 1} of ${JSON.stringify(text)} (expected key=value pairs separated by ',' or ';', values with those characters "quoted")`);
  };
  skipSpace();
  while (i < text.length) {
    const keyStart = i;
    while (i < text.length && KEY.test(text[i]!)) i++;
    const key = text.slice(keyStart, i);
    if (key === '') fail('missing key');
    skipSpace();
    if (text[i] !== '=') fail(`no '=' after key ${JSON.stringify(key)}`);
    i++;
    skipSpace();
    let value: string;
    if (text[i] === '"') {
      const end = closingQuote(text, i);
      if (end < 0) fail('unterminated quoted value');
      value = unquote(text.slice(i, end + 1)) ?? fail('bad escape in quoted value');
      i = end + 1;
    } else {
      const valueStart = i;
      while (i < text.length && !SEPARATOR.test(text[i]!)) i++;
      value = text.slice(valueStart, i).trim();
      if (BARE_FORBIDDEN.test(value)) {
        i = valueStart;
        fail(`the value of ${JSON.stringify(key)} holds '=', a quote or a backslash and is ambiguous; quote it`);
      }
    }
    if (Object.hasOwn(out, key)) fail(`key ${JSON.stringify(key)} given twice`);
    out[key] = value;
    skipSpace();
    if (i < text.length) {
      if (!SEPARATOR.test(text[i]!)) fail('expected , or ; after a value');
      i++;
      skipSpace();
      if (i >= text.length) fail('trailing separator');
    }
  }
  return { ...out };
}

function unquote(quoted: string): string | null {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return null;
  }
}

/** The index of the quote closing the JSON string that opens at `start`, or -1. */
function closingQuote(text: string, start: number): number {
  for (let j = start + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j;
  }
  return -1;
}

/** Parses several lists (repeated flags or query parameters) into one object; a key given twice is refused. */
export function parseKeyValueLists(field: string, items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    for (const [k, v] of Object.entries(parseKeyValues(field, item))) {
      if (Object.hasOwn(out, k)) throw invalid(field, `key ${JSON.stringify(k)} given twice`);
      out[k] = v;
    }
  }
  return out;
}

/** The inverse of parseKeyValues: `k=v,k2="a,b"`. */
export function formatKeyValues(pairs: Record<string, string>): string {
  return Object.entries(pairs)
    .map(([k, v]) => `${k}=${v === '' || BARE_FORBIDDEN.test(v) || v.trim() !== v || /[\x00-\x1f]/.test(v) ? JSON.stringify(v) : v}`)
    .join(',');
}

/**
 * A map with some keys changed: a string sets the key, null removes it. `whole` is the field that
 * replaces the entire map; giving both would leave it unclear which wins, so it is refused.
 */
export function applyChanges(
  field: string,
  whole: { field: string; given: boolean },
  base: Record<string, string>,
  changes: Record<string, string | null> | undefined,
): Record<string, string> {
  if (changes === undefined) return base;
  if (whole.given) throw invalid(field, `give ${whole.field} (the whole set) or ${field} (some keys), not both`);
  const out = { ...base };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}
