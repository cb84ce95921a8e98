import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { etagMatches, parseRange } from '../../src/catalog/range.js';

describe('parseRange', () => {
  it.each([
    ['bytes=0-99', 1000, { start: 0, end: 99 }],
    ['bytes=100-', 1000, { start: 100, end: 999 }],
    ['bytes=-10', 1000, { start: 990, end: 999 }],
    ['bytes=-5000', 1000, { start: 0, end: 999 }],
    ['bytes=990-5000', 1000, { start: 990, end: 999 }],
    ['BYTES = 1 - 2', 1000, { start: 1, end: 2 }],
    ['bytes=1000-', 1000, 'unsatisfiable'],
    ['bytes=-0', 1000, 'unsatisfiable'],
    ['bytes=0-', 0, 'unsatisfiable'],
    ['bytes=5-1', 1000, null],
    ['bytes=0-1,5-6', 1000, null],
    ['items=0-1', 1000, null],
    ['bytes=-', 1000, null],
    [undefined, 1000, null],
  ] as const)('%s of %i bytes', (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });

  it('never returns a range outside the file, whatever the header', () => {
    fc.assert(
      fc.property(fc.string(), fc.nat(), (header, size) => {
        const r = parseRange(header, size);
        if (r === null || r === 'unsatisfiable') return true;
        return r.start >= 0 && r.start <= r.end && r.end < size;
      }),
    );
  });

  it('a satisfiable first-last range returns exactly those bytes, clipped to the file', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e12 }), fc.nat(), fc.nat(), (size, a, b) => {
        const [first, last] = a <= b ? [a, b] : [b, a];
        const r = parseRange(`bytes=${first}-${last}`, size);
        if (first >= size) return r === 'unsatisfiable';
        return typeof r === 'object' && r !== null && r.start === first && r.end === Math.min(last, size - 1);
      }),
    );
  });
});

describe('etagMatches', () => {
  const etag = '"abc"';
  it.each([
    ['"abc"', true],
    ['W/"abc"', true],
    ['"x", "abc"', true],
    ['*', true],
    ['"abcd"', false],
    [undefined, false],
  ] as const)('If-None-Match: %s', (header, expected) => {
    expect(etagMatches(header, etag)).toBe(expected);
  });
});
