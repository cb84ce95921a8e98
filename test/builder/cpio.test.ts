import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeCpio, type CpioEntry } from '../../src/builder/cpio.js';

const scratch = mkdtempSync(join(tmpdir(), 'livery-cpio-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const text = (s: string) => new TextEncoder().encode(s);
const ENTRIES: CpioEntry[] = [
  { path: 'init', type: 'file', mode: 0o755, data: text('#!/bin/sh\necho hi\n') },
  { path: 'etc', type: 'dir', mode: 0o755 },
  { path: 'etc/odd', type: 'file', mode: 0o600, data: text('12345') },
  { path: 'etc/empty', type: 'file', mode: 0o644, data: new Uint8Array(0) },
  { path: 'bin', type: 'dir', mode: 0o755 },
  { path: 'bin/sh', type: 'symlink', target: 'busybox' },
  { path: 'dev', type: 'dir', mode: 0o755 },
  { path: 'dev/console', type: 'chardev', mode: 0o600, major: 5, minor: 1 },
];

/** GNU cpio (Debian's) reads what we write: the independent check of the format. */
function cpio(args: string[], archive: Uint8Array, cwd = scratch): string {
  return execFileSync('cpio', args, { input: archive, cwd, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('cpio newc encoder', () => {
  it('lists every entry, parents before children, with modes, owners and the fixed mtime', () => {
    const archive = encodeCpio(ENTRIES, 1735689600);
    const listing = cpio(['-t', '-v', '--quiet'], archive).trim().split('\n');
    expect(listing.map((l) => /(\S+)(?: -> \S+)?$/.exec(l)![1])).toEqual(['bin', 'bin/sh', 'dev', 'dev/console', 'etc', 'etc/empty', 'etc/odd', 'init']);
    expect(listing[3]).toMatch(/^crw------- +1 root +root +5, +1 Jan +1 +2025 dev\/console$/);
    expect(listing[6]).toMatch(/^-rw------- +1 root +root +5 Jan +1 +2025 etc\/odd$/);
    expect(listing[1]).toMatch(/^lrwxrwxrwx .* bin\/sh -> busybox$/);
  });

  it('extracts to the same contents', () => {
    const dir = mkdtempSync(join(scratch, 'x-'));
    cpio(['-i', '-d', '--quiet'], encodeCpio(ENTRIES, 0), dir);
    expect(readFileSync(join(dir, 'init'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(lstatSync(join(dir, 'init')).mode & 0o7777).toBe(0o755);
    expect(readFileSync(join(dir, 'etc/odd'), 'utf8')).toBe('12345');
    expect(readlinkSync(join(dir, 'bin/sh'))).toBe('busybox');
    expect(lstatSync(join(dir, 'dev/console')).isCharacterDevice()).toBe(true);
  });

  it('is deterministic and independent of entry order (property)', () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(ENTRIES, { minLength: ENTRIES.length }), (shuffled) => {
        expect(encodeCpio(shuffled, 7)).toEqual(encodeCpio(ENTRIES, 7));
      }),
      { numRuns: 30 },
    );
  });

  it('round-trips arbitrary file contents through GNU cpio (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.stringMatching(/^[a-z]{1,10}$/), (data, name) => {
        const dir = mkdtempSync(join(scratch, 'p-'));
        cpio(['-i', '--quiet'], encodeCpio([{ path: name, type: 'file', mode: 0o644, data }], 0), dir);
        expect(new Uint8Array(readFileSync(join(dir, name)))).toEqual(data);
      }),
      { numRuns: 25 },
    );
  });
});
