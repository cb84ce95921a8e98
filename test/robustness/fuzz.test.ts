/**
 * Mutation fuzzing of everything that parses outside input: the DHCP and TFTP codecs, the
 * recipe parser, the bundle reader and the template loader. Seeds are valid inputs; fast-check
 * flips bits, truncates, splices and appends garbage. Each target may reject an input only with
 * its own typed error, never crash or leave anything behind. `make fuzz` runs the same targets
 * far longer (FUZZ_RUNS); a failing input found there is saved under test/fixtures/fuzz/ and
 * replayed here on every run.
 */
import fc from 'fast-check';
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { sampleTemplateData, TemplateError, TemplateStore } from '../../src/boot/index.js';
import { parseRecipe, RecipeError } from '../../src/builder/recipe.js';
import { Catalog } from '../../src/catalog/index.js';
import { openCmdb } from '../../src/cmdb/index.js';
import { CmdbError } from '../../src/cmdb/errors.js';
import { resolveConfig } from '../../src/config/index.js';
import { decodeDhcp, encodeDhcp } from '../../src/dhcp/wire/codec.js';
import { decodePacket as decodeTftp } from '../../src/tftp/codec.js';
import { makeBundle } from '../helpers/bundle.js';
import { tempDir } from '../helpers/tmp.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const FIXTURES = join(import.meta.dirname, '../fixtures');
const dir = tempDir('livery-fuzz-');
afterAll(() => dir.cleanup());

/** Valid inputs mutated the ways a hostile or broken peer would. */
function mutated(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const seed = fc.constantFrom(...seeds);
  return fc.oneof(
    fc.uint8Array({ maxLength: 1500 }),
    fc.tuple(seed, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 16 })).map(([s, flips]) => {
      const b = Uint8Array.from(s);
      for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
      return b;
    }),
    fc.tuple(seed, fc.nat()).map(([s, n]) => s.subarray(0, s.length ? n % s.length : 0)),
    fc.tuple(seed, fc.uint8Array({ maxLength: 300 }), fc.nat()).map(([s, junk, at]) => {
      const cut = s.length ? at % s.length : 0;
      return Uint8Array.from([...s.subarray(0, cut), ...junk, ...s.subarray(cut)]);
    }),
  );
}

/** Replays saved crashers of one target as extra seeds. */
function savedInputs(target: string): Uint8Array[] {
  const d = join(FIXTURES, 'fuzz', target);
  return existsSync(d) ? readdirSync(d).map((f) => readFileSync(join(d, f))) : [];
}

const fixtureFiles = (area: string) => readdirSync(join(FIXTURES, area)).filter((f) => f.endsWith('.bin')).map((f) => readFileSync(join(FIXTURES, area, f)));

describe(`fuzz (${RUNS} runs per target)`, () => {
  it('DHCP decode is total and every accepted packet re-encodes', () => {
    const seeds = [...fixtureFiles('dhcp'), ...savedInputs('dhcp')];
    fc.assert(
      fc.property(mutated(seeds), (bytes) => {
        const d = decodeDhcp(bytes);
        if (!d.ok) return;
        try {
          encodeDhcp(d.packet);
        } catch (err) {
          // The encoder refuses values it cannot write faithfully, and says so.
          expect(err).toBeInstanceOf(RangeError);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('TFTP decode is total', () => {
    const rrq = Buffer.from('\x00\x01undionly.kpxe\x00octet\x00blksize\x001468\x00tsize\x000\x00windowsize\x0016\x00', 'binary');
    const seeds = [rrq, Buffer.from([0, 4, 0, 1]), Buffer.from('\x00\x05\x00\x01oops\x00', 'binary'), ...savedInputs('tftp')];
    fc.assert(
      fc.property(mutated(seeds), (bytes) => {
        const r = decodeTftp(bytes);
        expect(typeof r).toBe('object');
      }),
      { numRuns: RUNS },
    );
  });

  it('the recipe parser accepts a recipe or names file, line and problem', () => {
    const minimal = readFileSync(join(import.meta.dirname, '../../images/minimal/recipe'));
    const seeds = [minimal, ...savedInputs('recipe')];
    const file = join(dir.path, 'recipe');
    fc.assert(
      fc.property(mutated(seeds), (bytes) => {
        writeFileSync(file, bytes);
        try {
          parseRecipe(file);
        } catch (err) {
          expect(err).toBeInstanceOf(RecipeError);
          expect((err as Error).message).toMatch(/recipe:\d+: /);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('the template loader keeps serving and reports broken templates with file and line', () => {
    const tdir = join(dir.path, 'templates');
    mkdirSync(join(tdir, 'ipxe'), { recursive: true });
    const good = readFileSync(join(import.meta.dirname, '../../pxe-templates/ipxe/boot.ipxe'));
    const config = resolveConfig({ dataDir: dir.path });
    const data = sampleTemplateData(config);
    const file = join(tdir, 'ipxe/boot.ipxe');
    writeFileSync(file, good);
    const store = new TemplateStore(tdir, undefined, data, 0);
    const reference = store.render('ipxe/boot.ipxe', data);
    let t = Date.now();
    fc.assert(
      fc.property(mutated([good, ...savedInputs('template')]), (bytes) => {
        writeFileSync(file, bytes);
        // Force a new mtime so every input is reloaded.
        t += 1000;
        const when = new Date(t);
        utimesSync(file, when, when);
        store.scan();
        const out = (() => {
          try {
            return store.render('ipxe/boot.ipxe', data);
          } catch (err) {
            expect(err).toBeInstanceOf(TemplateError);
            return null;
          }
        })();
        for (const p of store.problems()) expect(p.message).toMatch(/^ipxe\/boot\.ipxe(:\d+)?: /);
        // Either the new text loaded, or the last good one still renders.
        expect(out === null ? false : typeof out === 'string').toBe(true);
      }),
      { numRuns: Math.min(RUNS, 2000) },
    );
    writeFileSync(file, good);
    t += 1000;
    utimesSync(file, new Date(t), new Date(t));
    store.scan();
    expect(store.render('ipxe/boot.ipxe', data)).toBe(reference);
  });

  it('the bundle reader accepts a bundle or refuses it, leaving the catalog as it was', async () => {
    const config = resolveConfig({ dataDir: join(dir.path, 'catalog'), catalog: { maxBundleBytes: 4_000_000, maxArtifactBytes: 2_000_000 } });
    mkdirSync(config.dataDir, { recursive: true });
    const cmdb = openCmdb(join(config.dataDir, 'livery.db'));
    const catalog = new Catalog(cmdb, config);
    const blobsDir = join(config.dataDir, 'blobs');
    const listBlobs = () => (existsSync(blobsDir) ? readdirSync(blobsDir, { recursive: true }).map(String).filter((f) => /[0-9a-f]{64}$/.test(f)).sort() : []);
    const { tar } = await makeBundle('fuzz', '1', [
      { name: 'vmlinuz', role: 'kernel', content: Buffer.from('kernel') },
      { name: 'initrd.img', role: 'initrd', content: Buffer.from('initrd') },
    ]);
    let version = 0;
    try {
      await fc.assert(
        fc.asyncProperty(mutated([tar, ...savedInputs('bundle')]), async (bytes) => {
          const before = { images: cmdb.images.list().length, blobs: listBlobs() };
          try {
            await catalog.publish(Readable.from([Buffer.from(bytes)]), { actor: 'fuzz' });
            version++;
          } catch (err) {
            expect(err instanceof CmdbError || (err as Error).name.endsWith('Error')).toBe(true);
            expect((err as Error).message.length).toBeGreaterThan(0);
            expect(cmdb.images.list().length).toBe(before.images);
            expect(listBlobs()).toEqual(before.blobs);
          }
        }),
        { numRuns: Math.min(RUNS, 1000) },
      );
      expect(cmdb.integrityCheck()).toBe('ok');
      // After all that, the catalog still takes a good bundle.
      const after = await makeBundle('fuzz', 'after');
      await catalog.publish(Readable.from([after.tar]), { actor: 'fuzz' });
      expect(cmdb.images.list().length).toBe(version + 1);
    } finally {
      cmdb.close();
    }
  });
});
