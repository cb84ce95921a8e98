import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import { EXAMPLES } from '../../src/cli/examples.js';
import { buildProgram } from '../../src/cli/program.js';
import { CLI, livery } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('livery CLI options, help and completion', () => {
  it('prints the version of the package it ships in', () => {
    const r = livery(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe((JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version);
  });

  it('checks a config without serving, taking the data dir and listen address from LIVERY_* variables', () => {
    const config = join(dir.path, 'ok.toml');
    writeFileSync(config, '[tftp]\nenabled = false\n');
    const r = livery(['serve', '--check-config'], { LIVERY_CONFIG: config, LIVERY_DATA_DIR: join(dir.path, 'elsewhere'), LIVERY_HTTP_LISTEN: '127.0.0.1:9999' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('configuration is valid');
    const resolved = JSON.parse(r.stdout) as { dataDir: string; http: { listen: string }; tftp: { enabled: boolean } };
    expect(resolved).toMatchObject({ dataDir: join(dir.path, 'elsewhere'), http: { listen: '127.0.0.1:9999' }, tftp: { enabled: false } });
  });

  it('names the bad setting and exits 2', () => {
    const config = join(dir.path, 'bad.toml');
    writeFileSync(config, '[tftp]\nenabled = "sometimes"\n');
    const r = livery(['serve', '--check-config', '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tftp\.enabled/);
    expect(r.stdout).toBe('');
  });

  it('refuses a value outside an option\'s choices before sending anything, listing the allowed ones', () => {
    // No server listens at this URL: the refusal must come from the CLI itself.
    const env = { LIVERY_URL: 'http://127.0.0.1:9', LIVERY_TOKEN: 'x' };
    const r = livery(['machine', 'list', '--state', 'gone'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("argument 'gone' is invalid. Allowed choices are discovered, registered, retired.");
    expect(livery(['subnet', 'add', 'x', '--cidr', '10.0.0.0/24', '--policy', 'maybe'], env).stderr).toContain('Allowed choices are ignore, discover, default-image');
    expect(livery(['token', 'create', '--role', 'root'], env).stderr).toContain('Allowed choices are admin, operator, publisher, reader');
  });

  it('gives every command a one-line description and an example', () => {
    const paths: string[] = [];
    const walk = (cmd: Command, path: string[]) => {
      paths.push(path.join(' '));
      expect(cmd.description(), `livery ${path.join(' ')}`).toMatch(/^[^\n]+$/);
      for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
    };
    walk(buildProgram(), []);
    expect(paths.filter((p) => !EXAMPLES[p])).toEqual([]);
    expect(Object.keys(EXAMPLES).filter((p) => !paths.includes(p))).toEqual([]);
    expect(livery(['machine', 'set', '--help']).stdout).toContain('Example:\n  livery machine set node7');
  });

  it('completes commands and options in bash from the command tree', () => {
    const complete = (...words: string[]) =>
      execFileSync('bash', ['-c', `source <("${process.execPath}" "${CLI}" completion bash); COMP_WORDS=(livery "$@"); COMP_CWORD=$#; _livery; echo "\${COMPREPLY[*]}"`, 'bash', ...words], { encoding: 'utf8' }).trim();
    expect(complete('mach')).toBe('machine');
    expect(complete('machine', '--json', 's').split(' ')).toEqual(['set', 'show']);
    expect(complete('machine', 'set', '--unl')).toBe('--unlabel');
    expect(complete('rollout', 'st')).toBe('start');
  });
});
