import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CmdbError } from '../../src/cmdb/errors.js';
import { firstMismatch, formatSelector, matchesSelector, parseSelector, type Selector } from '../../src/cmdb/selector.js';

const key = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,12}$/);
const value = fc.stringMatching(/^[A-Za-z0-9._:/+-]{1,12}$/);
/** Selectors as data: distinct keys, each with a non-empty set of values. */
const selector: fc.Arbitrary<Selector> = fc
  .uniqueArray(fc.tuple(key, fc.uniqueArray(value, { minLength: 1, maxLength: 4 })), { minLength: 1, maxLength: 6, selector: ([k]) => k })
  .map((terms) => terms.map(([k, values]) => ({ key: k, values: [...values].sort() })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));

/** The same selector written by hand: terms in any order, spaces around the punctuation. */
const written = (sel: Selector, order: number[], spaced: boolean) => {
  const sp = spaced ? ' ' : '';
  const terms = order.map((i) => sel[i % sel.length]!).filter((t, i, a) => a.indexOf(t) === i);
  const rest = sel.filter((t) => !terms.includes(t));
  return [...terms, ...rest]
    .map((t) => (t.values.length === 1 && !spaced ? `${t.key}${sp}=${sp}${t.values[0]}` : `${t.key} in${sp}(${t.values.join(`${sp},${sp}`)})`))
    .join(`${sp},${sp}`);
};

describe('selectors', () => {
  it('parse(format(s)) is s, and any way of writing s parses to s', () => {
    fc.assert(
      fc.property(selector, fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (sel, order, spaced) => {
        expect(parseSelector(formatSelector(sel))).toEqual(sel);
        expect(parseSelector(written(sel, order, spaced))).toEqual(sel);
        expect(formatSelector(parseSelector(written(sel, order, spaced)))).toBe(formatSelector(sel));
      }),
    );
  });

  it('matches exactly when every term holds the subject\'s value (site and subnet are fields, other keys labels)', () => {
    const subject = fc.record({
      site: fc.option(value, { nil: null }),
      subnet: fc.option(value, { nil: null }),
      labels: fc.dictionary(key, value, { maxKeys: 6 }),
    });
    fc.assert(
      fc.property(selector, subject, (sel, subj) => {
        const valueOf = (k: string) => (k === 'site' ? subj.site : k === 'subnet' ? subj.subnet : (subj.labels[k] ?? null));
        const expected = sel.every((t) => {
          const v = valueOf(t.key);
          return v !== null && t.values.includes(v);
        });
        expect(matchesSelector(sel, subj)).toBe(expected);
        const miss = firstMismatch(sel, subj);
        if (miss) expect(miss.actual).toBe(valueOf(miss.term.key));
      }),
    );
    // A subject made to satisfy a selector always matches it.
    fc.assert(
      fc.property(selector, fc.nat(), (sel, pick) => {
        const labels: Record<string, string> = {};
        let site: string | null = null;
        let subnet: string | null = null;
        for (const t of sel) {
          const v = t.values[pick % t.values.length]!;
          if (t.key === 'site') site = v;
          else if (t.key === 'subnet') subnet = v;
          else labels[t.key] = v;
        }
        expect(matchesSelector(sel, { site, subnet, labels })).toBe(true);
      }),
    );
  });

  it('any text either parses or is refused with a CmdbError naming the field', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        try {
          const sel = parseSelector(text, 'body.selector');
          expect(sel.length).toBeGreaterThan(0);
        } catch (err) {
          expect(err).toBeInstanceOf(CmdbError);
          expect((err as CmdbError).field).toBe('body.selector');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('says what is wrong', () => {
    const msg = (t: string) => {
      try {
        parseSelector(t);
        return 'parsed';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(msg('')).toBe('selector: must name at least one term, e.g. role=kvm,site=par1');
    expect(msg('role=kvm,role=gpu')).toBe('selector: key role is given twice; use role in (a,b) for several values');
    expect(msg('role=')).toMatch(/^selector: invalid value "" for role/);
    expect(msg('role=kvm,')).toBe('selector: ends with a comma');
    expect(msg('role~kvm')).toMatch(/^selector: cannot read "role~kvm"/);
    expect(msg('role in (kvm,gpu),site=par1')).toBe('parsed');
  });
});
