import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { nftRuleset } from '../../src/builder/firewall.js';
import { parseDeb822Sources, parseOneLineSources, pickDebianArchive, systemDebianMirror } from '../../src/builder/mirror.js';
import { planPackages } from '../../src/builder/packages.js';
import { parseRecipe } from '../../src/builder/recipe.js';
import { nextVersion } from '../../src/builder/version.js';
import { splitWords } from '../../src/builder/words.js';

const FIXTURES = resolve('test/fixtures/builder');

describe('default mirror from the apt configuration', () => {
  it('picks the main archive from deb822 sources, skipping security, deb-src and disabled stanzas', () => {
    expect(systemDebianMirror(join(FIXTURES, 'apt'))).toBe('http://archive.mirror.invalid/debian');
  });

  it('reads one-line sources.list with options and comments', () => {
    expect(systemDebianMirror(join(FIXTURES, 'apt-oneline'))).toBe('http://oneline.mirror.invalid/debian');
    expect(parseOneLineSources('deb [arch=amd64] http://m.invalid/debian bookworm main contrib # x\n')).toEqual([
      { uri: 'http://m.invalid/debian', suites: ['bookworm'], components: ['main', 'contrib'] },
    ]);
  });

  it('joins deb822 continuation lines and finds nothing in an empty configuration', () => {
    expect(parseDeb822Sources('Types: deb\nURIs: http://a.invalid/debian\nSuites: bookworm\n bookworm-updates\nComponents: main\n')).toEqual([
      { uri: 'http://a.invalid/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
    ]);
    expect(pickDebianArchive([])).toBeUndefined();
    expect(systemDebianMirror(join(FIXTURES, 'no-such-dir'))).toBeUndefined();
  });
});

describe('automatic versions', () => {
  const day = new Date('2026-11-23T23:59:00Z');

  it('starts at .1 and counts past the highest bundle of the same day and name', () => {
    expect(nextVersion('minimal', [], day)).toBe('2026.11.23.1');
    expect(nextVersion('minimal', ['minimal-2026.11.23.1.tar', 'minimal-2026.11.23.7.tar', 'minimal-2026.11.22.9.tar', 'other-2026.11.23.12.tar', 'minimal-2026.11.23.x.tar'], day)).toBe(
      '2026.11.23.8',
    );
  });

  it('uses the UTC date', () => {
    expect(nextVersion('m', [], new Date('2026-01-02T00:30:00+02:00'))).toBe('2026.01.01.1');
  });
});

describe('package plan', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'livery-plan-'));
  const recipeWith = (extra: string) => {
    const path = join(scratch, `${Math.random().toString(36).slice(2)}.recipe`);
    writeFileSync(path, `name t\nbase debian bookworm amd64\n${extra}`);
    return parseRecipe(path);
  };

  it('adds the kernel, systemd, busybox-static, curl and what the settings need', () => {
    const plan = planPackages(recipeWith('user ops --sudo\ntimezone Europe/Berlin\nlocale de_DE.UTF-8\nfirewall --allow tcp/22\n%packages\nvim-tiny\n%end\n'));
    expect(plan.install).toEqual(['busybox-static', 'curl', 'linux-image-amd64', 'locales', 'nftables', 'sudo', 'systemd-sysv', 'tzdata', 'usr-is-merged', 'vim-tiny']);
    expect(plan.purge).toEqual(['usrmerge']);
    expect(planPackages(recipeWith('')).install).not.toContain('nftables');
  });

  it('purges -pkg names and refuses to remove what the image needs, saying why', () => {
    expect(planPackages(recipeWith('%packages\n-nano\n%end\n')).purge).toEqual(['nano', 'usrmerge']);
    expect(() => planPackages(recipeWith('%packages\n-curl\n%end\n'))).toThrow('package curl cannot be removed with -curl: livery-agent fetches metadata and phones home with it');
  });

  it('refuses architectures it has no kernel for', () => {
    const r = recipeWith('');
    expect(() => planPackages({ ...r, base: { ...r.base, arch: 'mips' } })).toThrow('no kernel package known for architecture mips (supported: amd64, arm64)');
  });

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
});

describe('firewall ruleset', () => {
  it.skipIf(process.getuid?.() !== 0)('is accepted by nft and opens exactly the allowed ports (needs root for a network namespace)', () => {
    const ruleset = nftRuleset([
      { protocol: 'tcp', fromPort: 22, toPort: 22 },
      { protocol: 'udp', fromPort: 5000, toPort: 5010 },
    ]);
    expect(ruleset).toContain('policy drop;');
    expect(ruleset).toContain('\t\ttcp dport 22 accept\n');
    expect(ruleset).toContain('\t\tudp dport 5000-5010 accept\n');
    // nft parses offline only in a network namespace of its own; the check never touches the host's rules.
    const dir = mkdtempSync(join(tmpdir(), 'livery-nft-'));
    try {
      writeFileSync(join(dir, 'rules.nft'), ruleset);
      execFileSync('unshare', ['--net', 'nft', '--check', '-f', join(dir, 'rules.nft')], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('recipe word splitting', () => {
  it('handles quotes, escapes and comments', () => {
    expect(splitWords(`user a --ssh-key "ssh-ed25519 AAA x#1" 'it''s' "q\\"d" # comment`)).toEqual({ ok: true, words: ['user', 'a', '--ssh-key', 'ssh-ed25519 AAA x#1', 'its', 'q"d'] });
    expect(splitWords('a#b c')).toEqual({ ok: true, words: ['a#b', 'c'] });
    expect(splitWords("x 'open")).toEqual({ ok: false, error: "unterminated ' quote (expected a closing ')" });
  });

  it('round-trips any words quoted with single quotes (property)', () => {
    const word = fc.string({ minLength: 1, maxLength: 12 }).filter((w) => !w.includes("'") && !w.includes('\n'));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 6 }), (words) => {
        const line = words.map((w) => `'${w}'`).join(' ');
        expect(splitWords(line)).toEqual({ ok: true, words });
      }),
    );
  });

  it('never throws on arbitrary input (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 80 }), (s) => void splitWords(s)));
  });
});
