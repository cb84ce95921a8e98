import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pruneBases } from '../../src/builder/bootstrap.js';
import { tempDir } from '../helpers/tmp.js';

describe('base cache pruning', () => {
  const dirs: { cleanup(): void }[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

  /** A cache with bases used `ageS` seconds ago (each a folder with a root inside), plus other files. */
  const cacheWith = (ages: Record<string, number>): string => {
    const dir = tempDir();
    dirs.push(dir);
    for (const [key, ageS] of Object.entries(ages)) {
      const base = join(dir.path, `base-${key}`);
      mkdirSync(join(base, 'root', 'usr'), { recursive: true });
      writeFileSync(join(base, 'root', 'usr', 'file'), key);
      const t = new Date(Date.now() - ageS * 1000);
      utimesSync(base, t, t);
    }
    mkdirSync(join(dir.path, 'logs'));
    mkdirSync(join(dir.path, 'base-aaaa.partial-123'));
    return dir.path;
  };

  it('keeps the most recently used bases and the current one, removes the rest and nothing else', () => {
    const cache = cacheWith({ aaaa: 400, bbbb: 10, cccc: 300, dddd: 20, eeee: 1000 });
    // The current base is the oldest by mtime here: it is kept whatever its age.
    const removed = pruneBases(cache, 3, join(cache, 'base-eeee'));
    expect(removed.sort()).toEqual([join(cache, 'base-aaaa'), join(cache, 'base-cccc')]);
    expect(readdirSync(cache).sort()).toEqual(['base-aaaa.partial-123', 'base-bbbb', 'base-dddd', 'base-eeee', 'logs']);
  });

  it('with keep = 1 leaves only the current base; with room to spare removes nothing', () => {
    const cache = cacheWith({ aaaa: 5, bbbb: 10 });
    expect(pruneBases(cache, 5, join(cache, 'base-aaaa'))).toEqual([]);
    expect(pruneBases(cache, 1, join(cache, 'base-aaaa'))).toEqual([join(cache, 'base-bbbb')]);
    expect(existsSync(join(cache, 'base-aaaa', 'root', 'usr', 'file'))).toBe(true);
  });
});
