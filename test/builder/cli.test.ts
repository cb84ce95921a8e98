import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { livery } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('livery image build (argument and recipe errors, no bootstrap)', () => {
  it('names the file, line and what was expected for a bad recipe, and builds nothing', () => {
    const image = join(dir.path, 'broken');
    mkdirSync(image);
    writeFileSync(join(image, 'recipe'), 'name broken\nbase debian bookworm amd64\nfrobnicate yes\n');
    const r = livery(['image', 'build', image, '--out', join(dir.path, 'out'), '--cache-dir', join(dir.path, 'cache')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/broken\/recipe:3: .*frobnicate/);
  });

  it('refuses --channel without --publish', () => {
    const r = livery(['image', 'build', 'images/minimal', '--channel', 'stable']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--channel goes with --publish');
  });
});
