/**
 * Option parsing for one recipe directive: `--flag`, `--name value` (once) and
 * `--name value` (repeatable); everything else is positional. Returns an error string in
 * recipe-message form instead of throwing so the caller can attach file and line.
 */
export type OptionKind = 'flag' | 'value' | 'repeat';

export interface ParsedOptions {
  positional: string[];
  flags: Set<string>;
  values: Map<string, string[]>;
}

export function parseOptions(
  directive: string,
  words: string[],
  spec: Record<string, OptionKind>,
): { ok: true; options: ParsedOptions } | { ok: false; error: string } {
  const options: ParsedOptions = { positional: [], flags: new Set(), values: new Map() };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (!w.startsWith('--')) {
      options.positional.push(w);
      continue;
    }
    const kind = spec[w];
    if (kind === undefined) {
      const known = Object.keys(spec);
      const expected = known.length > 0 ? ` (expected ${known.join(', ')})` : ' (it takes no options)';
      return { ok: false, error: `unknown option '${w}' for '${directive}'${expected}` };
    }
    if (kind === 'flag') {
      options.flags.add(w);
      continue;
    }
    const value = words[i + 1];
    if (value === undefined) return { ok: false, error: `option '${w}' of '${directive}' expects a value` };
    const seen = options.values.get(w) ?? [];
    if (kind === 'value' && seen.length > 0) return { ok: false, error: `option '${w}' of '${directive}' given twice` };
    options.values.set(w, [...seen, value]);
    i++;
  }
  return { ok: true, options };
}
