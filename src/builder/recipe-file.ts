import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { kernelArgsProblem } from '../cmdb/kernel-args.js';
import { parseOptions, type OptionKind, type ParsedOptions } from './recipe-options.js';
import { emptyLayer, fold, type Layer, type Scalars } from './recipe-layer.js';
import type { Origin } from './recipe-types.js';
import { DIRECTIVES, USAGE } from './recipe-usage.js';
import * as v from './recipe-values.js';
import { splitWords } from './words.js';

/** A recipe that cannot be used; the message is `file:line: what was expected`. */
export class RecipeError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'RecipeError';
  }
}

/** One recipe file, its includes parsed (and cycles refused) on the way. */
export function parseFile(file: string, stack: string[]): Layer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RecipeError(file, 0, `cannot read recipe (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return new FileParser(file, text, [...stack, realpathSync(file)]).parse();
}

type Section = { kind: '%packages' } | { kind: '%post'; interpreter: string; start: number; body: string[] } | { kind: '%firewall'; start: number; body: string[] };

class FileParser {
  private readonly inherited = emptyLayer();
  private readonly own = emptyLayer();
  private readonly scalarLines = new Map<keyof Scalars, number>();
  private readonly flat: string[] = [];
  private lineNo = 0;
  private section: Section | undefined;
  private sectionStart = 0;

  constructor(
    private readonly file: string,
    private readonly source: string,
    private readonly stack: string[],
  ) {}

  parse(): Layer {
    const lines = this.source.replace(/\n$/, '').split('\n');
    for (const [i, raw] of lines.entries()) {
      this.lineNo = i + 1;
      const line = raw.replace(/\r$/, '');
      if (this.section) this.sectionLine(line);
      else this.directiveLine(line);
    }
    if (this.section) this.fail(`${this.section.kind} section is not closed (expected %end before the end of the file)`, this.sectionStart);
    return this.merged();
  }

  private fail(reason: string, line = this.lineNo): never {
    throw new RecipeError(this.file, line, reason);
  }

  private get origin(): Origin {
    return { file: this.file, line: this.lineNo };
  }

  private words(line: string): string[] {
    const split = splitWords(line);
    if (!split.ok) this.fail(split.error);
    return split.words;
  }

  private check<T>(c: v.Checked<T>): T {
    if (!c.ok) this.fail(c.error);
    return c.value;
  }

  private options(directive: string, args: string[], spec: Record<string, OptionKind>, positional: number | [number, number]): ParsedOptions {
    const parsed = parseOptions(directive, args, spec);
    if (!parsed.ok) this.fail(parsed.error);
    const [min, max] = typeof positional === 'number' ? [positional, positional] : positional;
    const n = parsed.options.positional.length;
    if (n < min || n > max) {
      const want = min === max ? `${min} argument${min === 1 ? '' : 's'}` : `${min} to ${max} arguments`;
      this.fail(`'${directive}' expects ${want}, got ${n} (${USAGE[directive]})`);
    }
    return parsed.options;
  }

  private setScalar<K extends keyof Scalars>(key: K, directive: string, value: Scalars[K]): void {
    const earlier = this.scalarLines.get(key);
    if (earlier !== undefined) this.fail(`'${directive}' already set at line ${earlier}`);
    this.scalarLines.set(key, this.lineNo);
    this.own.scalars[key] = value;
  }

  private sectionLine(line: string): void {
    const section = this.section!;
    this.flat.push(line);
    if (line.trim() === '%end') {
      if (section.kind === '%post') this.own.post.push({ interpreter: section.interpreter, body: section.body.join('\n') + '\n', origin: { file: this.file, line: section.start } });
      if (section.kind === '%firewall') this.setRuleset(section.body.join('\n') + '\n', section.start);
      this.section = undefined;
      return;
    }
    if (section.kind !== '%packages') {
      section.body.push(line);
      return;
    }
    for (const word of this.words(line)) {
      const remove = word.startsWith('-');
      const name = this.check(v.packageName(remove ? word.slice(1) : word));
      this.own.packageOps.push({ name, remove });
    }
  }

  private setRuleset(text: string, start: number): void {
    if (this.own.ruleset) this.fail(`%firewall already given at line ${this.own.ruleset.origin.line}`, start);
    this.own.ruleset = { text, origin: { file: this.file, line: start } };
  }

  private directiveLine(line: string): void {
    const words = this.words(line);
    if (words.length === 0) {
      this.flat.push(line);
      return;
    }
    const [directive, ...args] = words as [string, ...string[]];
    if (directive === '%include') {
      this.include(args, line);
      return;
    }
    this.flat.push(line);
    switch (directive) {
      case 'name':
        return this.setScalar('name', directive, this.check(v.imageName(this.options(directive, args, {}, 1).positional[0]!)));
      case 'version':
        return this.setScalar('version', directive, this.check(v.imageVersion(this.options(directive, args, {}, 1).positional[0]!)));
      case 'base':
        return this.base(args);
      case 'mirror':
        return this.setScalar('mirror', directive, this.check(v.mirrorUrl(this.options(directive, args, {}, 1).positional[0]!)));
      case 'user':
        return this.user(args);
      case 'rootpw':
        return this.rootpw(args);
      case 'timezone':
        return this.setScalar('timezone', directive, this.check(v.timezone(this.options(directive, args, {}, 1).positional[0]!)));
      case 'locale':
        return this.setScalar('locale', directive, this.check(v.locale(this.options(directive, args, {}, 1).positional[0]!)));
      case 'services':
        return this.services(args);
      case 'firewall': {
        const o = this.options(directive, args, { '--allow': 'repeat' }, 0);
        const allows = o.values.get('--allow') ?? [];
        if (allows.length === 0) this.fail(`'firewall' expects --allow (${USAGE.firewall})`);
        for (const a of allows) this.own.allow.push(...this.check(v.firewallAllows(a)));
        return;
      }
      case 'file':
        return this.fileCopy(args);
      case 'overlay': {
        const dir = this.options(directive, args, {}, 1).positional[0]!;
        this.own.overlays.push({ source: this.localPath(dir, 'directory'), origin: this.origin });
        return;
      }
      case 'kernel-args': {
        const o = this.options(directive, args, {}, [1, 64]);
        const words = o.positional.flatMap((a) => a.split(/\s+/)).filter((a) => a !== '');
        const problem = kernelArgsProblem(words.join(' '));
        if (problem) this.fail(`'kernel-args' ${problem}`);
        this.own.kernelArgs.push(...words);
        return;
      }
      case 'health':
        return this.health(args);
      case '%packages':
        this.options(directive, args, {}, 0);
        return this.open({ kind: '%packages' });
      case '%post': {
        const o = this.options(directive, args, { '--interpreter': 'value' }, 0);
        const interpreter = this.check(v.absoluteProgram(o.values.get('--interpreter')?.[0] ?? '/bin/sh'));
        return this.open({ kind: '%post', interpreter, start: this.lineNo, body: [] });
      }
      case '%firewall':
        this.options(directive, args, {}, 0);
        return this.open({ kind: '%firewall', start: this.lineNo, body: [] });
      case '%end':
        return this.fail("'%end' without an open %packages, %post or %firewall section");
      default:
        return this.fail(`unknown directive '${directive}' (expected one of ${DIRECTIVES.join(', ')})`);
    }
  }

  private open(section: Section): void {
    this.section = section;
    this.sectionStart = this.lineNo;
  }

  private base(args: string[]): void {
    const o = this.options('base', args, { '--components': 'value' }, 3);
    const [distribution, suite, arch] = o.positional as [string, string, string];
    if (distribution !== 'debian') this.fail(`expected distribution 'debian' (the only one supported so far), got '${distribution}'`);
    this.setScalar('base', 'base', {
      distribution,
      suite: this.check(v.suite(suite)),
      arch: this.check(v.arch(arch)),
      components: this.check(v.components(o.values.get('--components')?.[0] ?? 'main')),
    });
  }

  private user(args: string[]): void {
    const o = this.options('user', args, { '--ssh-key': 'repeat', '--sudo': 'flag', '--password': 'value', '--uid': 'value', '--groups': 'value', '--shell': 'value' }, 1);
    const name = this.check(v.userName(o.positional[0]!));
    if (name === 'root') this.fail("expected a user other than root (use 'rootpw' for root)");
    const clash = [...this.inherited.users, ...this.own.users].find((u) => u.name === name);
    if (clash) this.fail(`user '${name}' already declared at ${clash.origin.file}:${clash.origin.line}`);
    const password = o.values.get('--password')?.[0];
    const uid = o.values.get('--uid')?.[0];
    const groups = o.values.get('--groups')?.[0];
    this.own.users.push({
      name,
      sshKeys: (o.values.get('--ssh-key') ?? []).map((k) => this.check(v.sshKey(k))),
      sudo: o.flags.has('--sudo'),
      ...(password !== undefined ? { passwordHash: this.check(v.cryptHash(password)) } : {}),
      ...(uid !== undefined ? { uid: this.check(v.uid(uid)) } : {}),
      groups: groups === undefined ? [] : groups.split(',').map((g) => this.check(v.userName(g))),
      shell: this.check(v.absoluteProgram(o.values.get('--shell')?.[0] ?? '/bin/bash')),
      origin: this.origin,
    });
  }

  private rootpw(args: string[]): void {
    const o = this.options('rootpw', args, { '--lock': 'flag', '--hash': 'value' }, 0);
    const hash = o.values.get('--hash')?.[0];
    if (o.flags.has('--lock') === (hash !== undefined)) this.fail(`'rootpw' expects exactly one of --lock or --hash (${USAGE.rootpw})`);
    this.setScalar('rootPassword', 'rootpw', hash === undefined ? { locked: true } : { locked: false, hash: this.check(v.cryptHash(hash)) });
  }

  private services(args: string[]): void {
    const o = this.options('services', args, { '--enable': 'repeat', '--disable': 'repeat' }, 0);
    const enable = (o.values.get('--enable') ?? []).flatMap((u) => this.check(v.unitNames(u)));
    const disable = (o.values.get('--disable') ?? []).flatMap((u) => this.check(v.unitNames(u)));
    if (enable.length + disable.length === 0) this.fail(`'services' expects --enable or --disable (${USAGE.services})`);
    this.own.enable.push(...enable);
    this.own.disable.push(...disable);
  }

  private health(args: string[]): void {
    const [kind, value] = this.options('health', args, {}, 2).positional as [string, string];
    if (kind === 'timeout') return this.setScalar('healthTimeout', 'health timeout', this.check(v.healthTimeout(value)));
    if (kind === 'unit') {
      const units = this.check(v.unitNames(value));
      if (units.length !== 1) this.fail(`'health unit' expects one unit name (got '${value}'; give each unit its own line)`);
      this.own.healthChecks.push({ kind, value: units[0]! });
      return;
    }
    if (kind === 'command') {
      this.own.healthChecks.push({ kind, value: this.check(v.healthCommand(value)) });
      return;
    }
    this.fail(`expected 'health unit', 'health command' or 'health timeout', got 'health ${kind}' (${USAGE.health})`);
  }

  private fileCopy(args: string[]): void {
    const o = this.options('file', args, { '--mode': 'value', '--owner': 'value' }, 2);
    const [src, dest] = o.positional as [string, string];
    const mode = this.check(v.fileMode(o.values.get('--mode')?.[0] ?? '0644'));
    const { owner, group } = this.check(v.owner(o.values.get('--owner')?.[0] ?? 'root:root'));
    this.own.files.push({ source: this.localPath(src, 'file'), dest: this.check(v.imagePath(dest)), mode, owner, group, origin: this.origin });
  }

  /** A path relative to this recipe's folder that must exist and stay inside it (symlinks included). */
  private localPath(relative: string, kind: 'file' | 'directory'): string {
    if (relative.startsWith('/')) this.fail(`expected a path relative to the recipe's folder, got absolute '${relative}'`);
    const folder = realpathSync(dirname(this.file));
    const inside = (p: string) => p === folder || p.startsWith(folder + sep);
    const escapes = () => this.fail(`'${relative}' escapes the recipe's folder (expected a path inside ${folder})`);
    if (!inside(resolve(folder, relative))) escapes();
    let real: string;
    try {
      real = realpathSync(resolve(folder, relative));
    } catch {
      return this.fail(`${kind} '${relative}' not found next to the recipe`);
    }
    if (!inside(real)) escapes();
    const isDir = statSync(real).isDirectory();
    if (isDir !== (kind === 'directory')) this.fail(`expected '${relative}' to be a ${kind}`);
    return real;
  }

  private include(args: string[], line: string): void {
    const o = this.options('%include', args, {}, 1);
    const target = resolve(dirname(this.file), o.positional[0]!);
    let real: string;
    try {
      real = realpathSync(target);
    } catch (err) {
      return this.fail(`cannot read included recipe '${o.positional[0]}' (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (this.stack.includes(real)) {
      const cycle = [...this.stack.slice(this.stack.indexOf(real)), real].join(' -> ');
      this.fail(`include cycle: ${cycle}`);
    }
    const child = parseFile(target, this.stack);
    this.flat.push(`# >>> ${line.trim()}`, child.text, `# <<< end of ${o.positional[0]}`);
    fold(this.inherited, child);
  }

  /** Included layers first, then this file's own lines; own scalars win. */
  private merged(): Layer {
    const result = emptyLayer();
    fold(result, this.inherited);
    fold(result, this.own);
    result.text = this.flat.join('\n');
    return result;
  }
}
