/**
 * A machine selector as the CLI and API take it: `key=value` label equalities, comma
 * separated, all of which must hold (`role=kvm,site=par1`). `site` matches the machine's site
 * field unless the machine carries a `site` label. Kept on its own so every command that takes
 * `--selector` parses it the same way.
 */
export type Selector = Record<string, string>;

const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/;
const VALUE = /^[A-Za-z0-9._:/@+-]{1,128}$/;

export class SelectorError extends Error {
  constructor(message: string) {
    super(`selector: ${message}`);
    this.name = 'SelectorError';
  }
}

export function parseSelector(text: string): Selector {
  const out: Selector = {};
  if (text.trim() === '') throw new SelectorError("expected key=value pairs separated by commas, such as 'role=kvm,site=par1' (got nothing)");
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq < 0 || !KEY.test(key) || !VALUE.test(value)) throw new SelectorError(`expected key=value such as 'role=kvm' (got '${part}')`);
    if (key in out && out[key] !== value) throw new SelectorError(`'${key}' given twice with different values`);
    out[key] = value;
  }
  return out;
}

export function formatSelector(s: Selector): string {
  return Object.entries(s)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function matches(s: Selector, m: { site: string | null; labels: Record<string, string> }): boolean {
  return Object.entries(s).every(([k, v]) => (k === 'site' && !('site' in m.labels) ? m.site === v : m.labels[k] === v));
}
