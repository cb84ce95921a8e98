import fc from 'fast-check';
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeRequestPath, resolveUnderRoot } from '../../src/tftp/confine.js';
import { tempDir } from '../helpers/tmp.js';

describe('tftp request path normalisation', () => {
  it.each([
    ['undionly.kpxe', 'undionly.kpxe'],
    ['/undionly.kpxe', 'undionly.kpxe'],
    ['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff'],
    ['./grub//grub.cfg', 'grub/grub.cfg'],
    ['/etc/passwd', 'etc/passwd'],
    ['a/...', 'a/...'],
  ])('accepts %j as %j', (requested, path) => {
    expect(normalizeRequestPath(requested)).toEqual({ ok: true, path });
  });

  it.each([
    ['../etc/passwd', 'traversal'],
    ['a/../../x', 'traversal'],
    ['a/..', 'traversal'],
    ['//etc/passwd', 'absolute'],
    ['..\\..\\windows', 'backslash'],
    ['boot\\x86\\wdsnbp.com', 'backslash'],
    ['ok\0../../etc/passwd', 'nul-byte'],
    ['', 'empty'],
    ['/', 'empty'],
    ['./.', 'empty'],
  ])('refuses %j (%s)', (requested, reason) => {
    expect(normalizeRequestPath(requested)).toEqual({ ok: false, reason });
  });

  it('never yields a path that could leave the root', () => {
    const segment = fc.oneof(fc.constantFrom('..', '.', '', '/', '\\', '\0', 'a', 'b.c'), fc.string({ maxLength: 5 }));
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), fc.boolean(), (parts, lead) => {
        const result = normalizeRequestPath((lead ? '/' : '') + parts.join('/'));
        if (!result.ok) return;
        expect(result.path.startsWith('/')).toBe(false);
        expect(result.path.split('/')).not.toContain('..');
        expect(result.path.split('/')).not.toContain('');
        expect(result.path).not.toMatch(/[\\\0]/);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('tftp root confinement on a real tree', () => {
  const dir = tempDir('livery-tftp-confine-');
  const outside = tempDir('livery-tftp-outside-');
  let root: string;

  beforeAll(() => {
    root = realpathSync(dir.path);
    mkdirSync(join(root, 'grub'));
    writeFileSync(join(root, 'grub', 'grub.cfg'), 'set timeout=1\n');
    writeFileSync(join(outside.path, 'secret'), 'not for you\n');
    symlinkSync('grub/grub.cfg', join(root, 'inside-link'));
    symlinkSync(join(outside.path, 'secret'), join(root, 'outside-link'));
    symlinkSync(outside.path, join(root, 'outside-dir'));
  });

  afterAll(() => {
    dir.cleanup();
    outside.cleanup();
  });

  it('resolves plain files and symlinks that stay inside', async () => {
    expect(await resolveUnderRoot(root, 'grub/grub.cfg')).toEqual({ ok: true, path: join(root, 'grub', 'grub.cfg') });
    expect(await resolveUnderRoot(root, 'inside-link')).toEqual({ ok: true, path: join(root, 'grub', 'grub.cfg') });
  });

  it('refuses symlinks whose real path leaves the root, to a file or through a directory', async () => {
    expect(await resolveUnderRoot(root, 'outside-link')).toEqual({ ok: false, reason: 'symlink-escape' });
    expect(await resolveUnderRoot(root, 'outside-dir/secret')).toEqual({ ok: false, reason: 'symlink-escape' });
  });

  it('reports missing files as not found', async () => {
    expect(await resolveUnderRoot(root, 'nope')).toEqual({ ok: false, reason: 'not-found' });
    expect(await resolveUnderRoot(root, 'grub/grub.cfg/below-a-file')).toEqual({ ok: false, reason: 'not-found' });
  });
});
