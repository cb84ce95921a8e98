import Handlebars from 'handlebars';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Logger } from '../log.js';
import { QUOTE, quotedCopy, templateLanguage } from './quoting.js';
import { rootKeysRead } from './template-reads.js';

export class TemplateError extends Error {
  override name = 'TemplateError';
  constructor(
    readonly file: string,
    readonly line: number | null,
    message: string,
  ) {
    super(`${file}${line !== null ? `:${line}` : ''}: ${message}`);
  }
}

interface Compiled {
  render: Handlebars.TemplateDelegate;
  /** The top-level data keys it reads (null: any): only those are quoted for it. */
  reads: ReadonlySet<string> | null;
  mtimeMs: number;
}

/**
 * Operator-editable templates under pxe-templates/, compiled with Handlebars (logic-less,
 * strict: a misspelt variable is an error, not an empty string). Handlebars' own HTML escaping
 * is off: values are quoted for the template's language instead (see quoting.ts). A file that
 * stops compiling is reported with file and line and the last good version keeps serving.
 */
export class TemplateStore {
  private readonly good = new Map<string, Compiled>();
  private readonly errors = new Map<string, TemplateError>();
  private lastScan = 0;

  constructor(
    readonly dir: string,
    private readonly logger?: Logger,
    /**
     * Data a template must render without error to be accepted (a misspelt variable is caught
     * when the file is saved, not when a machine boots).
     */
    private readonly sample: object = {},
    /** How often (ms) to look for edited files. */
    private readonly rescanMs = 2000,
  ) {
    this.scan();
  }

  /**
   * Renders `name` with `data`, every value quoted for the template's language (its folder);
   * throws TemplateError if there never was a good version or a value cannot be quoted.
   */
  render(name: string, data: object): string {
    if (Date.now() - this.lastScan >= this.rescanMs) this.scan();
    const t = this.good.get(name);
    if (!t) throw this.errors.get(name) ?? new TemplateError(name, null, `no such template in ${this.dir}`);
    try {
      return t.render(quoted(name, data, t.reads));
    } catch (err) {
      throw new TemplateError(name, lineOf(err), (err as Error).message.split('\n')[0]!);
    }
  }

  /** Current compile errors, for the API and metrics. */
  problems(): TemplateError[] {
    return [...this.errors.values()];
  }

  names(): string[] {
    return [...this.good.keys()].sort();
  }

  /** Recompiles files whose mtime changed; keeps the previous good version on failure. */
  scan(): void {
    this.lastScan = Date.now();
    for (const path of walk(this.dir)) {
      const name = relative(this.dir, path);
      const mtimeMs = statSync(path).mtimeMs;
      if (this.good.get(name)?.mtimeMs === mtimeMs && !this.errors.has(name)) continue;
      try {
        const source = readFileSync(path, 'utf8');
        // precompile parses the whole file now, so syntax errors surface at load, not at boot time.
        Handlebars.precompile(source, { strict: true, noEscape: true });
        const render = Handlebars.compile(source, { strict: true, noEscape: true });
        const reads = rootKeysRead(Handlebars.parse(source));
        render(quoted(name, this.sample, reads));
        this.good.set(name, { render, reads, mtimeMs });
        this.errors.delete(name);
      } catch (err) {
        const e = new TemplateError(name, lineOf(err), (err as Error).message.split('\n')[0]!);
        if (this.errors.get(name)?.message !== e.message) {
          this.logger?.error({ template: name, line: e.line }, `template error, keeping the last good version: ${e.message}`);
        }
        this.errors.set(name, e);
      }
    }
  }
}

/** The `reads` of template data, as the template's language must read them; a folder without quoting rules is refused. */
function quoted(name: string, data: object, reads: ReadonlySet<string> | null): object {
  const language = templateLanguage(name);
  if (!language) throw new TemplateError(name, null, `livery renders only templates under ${Object.keys(QUOTE).map((l) => `${l}/`).join(', ')}`);
  return quotedCopy(data, QUOTE[language], reads);
}

function lineOf(err: unknown): number | null {
  const e = err as { lineNumber?: number; message?: string };
  if (typeof e.lineNumber === 'number') return e.lineNumber;
  const m = /(?:Parse error on line|line) (\d+)/.exec(e.message ?? '');
  return m ? Number(m[1]) : null;
}

function* walk(dir: string): Generator<string> {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile() && !e.name.startsWith('.')) yield p;
  }
}
