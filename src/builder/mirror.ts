import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One apt source: a URI with the suites and components it serves. */
export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
}

/** Sources from a deb822 `.sources` file (only `Types: deb` stanzas that are enabled). */
export function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let current: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (/^\s/.test(line) && current) {
        fields.set(current, `${fields.get(current)} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      current = m[1]!.toLowerCase();
      fields.set(current, m[2]!.trim());
    }
    const list = (key: string) => (fields.get(key) ?? '').split(/\s+/).filter((x) => x !== '');
    if (!list('types').includes('deb') || fields.get('enabled')?.toLowerCase() === 'no') continue;
    for (const uri of list('uris')) sources.push({ uri, suites: list('suites'), components: list('components') });
  }
  return sources;
}

/** Sources from a one-line-style `sources.list`: `deb [options] URI SUITE COMPONENT...`. */
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (m) sources.push({ uri: m[1]!, suites: [m[2]!], components: m[3]!.split(/\s+/).filter((x) => x !== '') });
  }
  return sources;
}

/**
 * The main Debian archive among apt sources: the first whose suites include a plain release
 * name (not -security, -updates or -backports) and that is not a security mirror. Returns the
 * URI without a trailing slash, or undefined when none qualifies.
 */
export function pickDebianArchive(sources: AptSource[]): string | undefined {
  const plainSuite = (s: string) => /^[a-z]+$/.test(s);
  const main = sources.find((s) => s.suites.some(plainSuite) && !/security/.test(s.uri) && (s.components.length === 0 || s.components.includes('main')));
  return main?.uri.replace(/\/+$/, '');
}

/** The mirror this machine's apt uses for the main Debian archive (sources.list.d first). */
export function systemDebianMirror(etcApt = '/etc/apt'): string | undefined {
  const sources: AptSource[] = [];
  const dir = join(etcApt, 'sources.list.d');
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch {
    // no sources.list.d: only sources.list counts
  }
  for (const name of names) {
    const text = readFileSync(join(dir, name), 'utf8');
    if (name.endsWith('.sources')) sources.push(...parseDeb822Sources(text));
    else if (name.endsWith('.list')) sources.push(...parseOneLineSources(text));
  }
  try {
    sources.push(...parseOneLineSources(readFileSync(join(etcApt, 'sources.list'), 'utf8')));
  } catch {
    // absent sources.list is normal on deb822-only systems
  }
  return pickDebianArchive(sources);
}
