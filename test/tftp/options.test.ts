import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TftpOption } from '../../src/tftp/codec.js';
import { negotiateOptions } from '../../src/tftp/negotiate.js';

const limits = { maxBlksize: 1468, maxWindowsize: 64 };
const opts = (...pairs: [string, string][]): TftpOption[] => pairs.map(([name, value]) => ({ name, value }));

describe('tftp option negotiation', () => {
  it('acknowledges nothing when the client asked for nothing (so no OACK is sent)', () => {
    expect(negotiateOptions([], limits, 100)).toMatchObject({ blksize: 512, windowsize: 1, timeoutMs: null, accepted: [] });
  });

  it('fills in tsize with the real size and echoes options in the client spelling and order', () => {
    const n = negotiateOptions(opts(['TSIZE', '0'], ['blksize', '1024']), limits, 123456);
    expect(n.accepted).toEqual(opts(['TSIZE', '123456'], ['blksize', '1024']));
    expect(n.blksize).toBe(1024);
    expect({ ...n.requested }).toEqual({ tsize: '0', blksize: '1024' });
  });

  it('lowers blksize and windowsize to the configured limits', () => {
    const n = negotiateOptions(opts(['blksize', '65464'], ['windowsize', '65535']), limits, 1);
    expect(n).toMatchObject({ blksize: 1468, windowsize: 64 });
    expect(n.accepted).toEqual(opts(['blksize', '1468'], ['windowsize', '64']));
  });

  it.each([
    ['blksize below 8', ['blksize', '7']],
    ['non-numeric blksize', ['blksize', '1k']],
    ['negative blksize', ['blksize', '-512']],
    ['windowsize 0', ['windowsize', '0']],
    ['windowsize above 65535', ['windowsize', '65536']],
    ['timeout 0', ['timeout', '0']],
    ['timeout 256', ['timeout', '256']],
    ['an unknown option', ['multicast', '']],
    ['a blank tsize', ['tsize', '']],
  ] as [string, [string, string]][])('leaves out %s', (_what, pair) => {
    const n = negotiateOptions(opts(pair), limits, 10);
    expect(n.accepted).toEqual([]);
    expect(n).toMatchObject({ blksize: 512, windowsize: 1, timeoutMs: null });
  });

  it('takes the client timeout exactly, in seconds', () => {
    const n = negotiateOptions(opts(['timeout', '3']), limits, 10);
    expect(n.timeoutMs).toBe(3000);
    expect(n.accepted).toEqual(opts(['timeout', '3']));
  });

  it('does not acknowledge tsize when the size is not known up front (netascii)', () => {
    expect(negotiateOptions(opts(['tsize', '0'], ['blksize', '512']), limits, null).accepted).toEqual(opts(['blksize', '512']));
  });

  it('uses the first of repeated options and treats hostile names as plain keys', () => {
    const n = negotiateOptions(opts(['blksize', '600'], ['BLKSIZE', '700'], ['__proto__', 'x'], ['constructor', 'y']), limits, 1);
    expect(n.blksize).toBe(600);
    expect(n.accepted).toEqual(opts(['blksize', '600']));
    expect(Object.keys(n.requested)).toEqual(['blksize', '__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('never grants values outside the RFC ranges or the limits, whatever is asked', () => {
    const name = fc.constantFrom('blksize', 'windowsize', 'timeout', 'tsize', 'BlkSize', 'other');
    const value = fc.oneof(fc.nat().map(String), fc.string({ maxLength: 12 }));
    const max = fc.record({ maxBlksize: fc.integer({ min: 8, max: 65464 }), maxWindowsize: fc.integer({ min: 1, max: 65535 }) });
    fc.assert(
      fc.property(fc.array(fc.record({ name, value }), { maxLength: 8 }), max, fc.option(fc.nat()), (options, lim, size) => {
        const n = negotiateOptions(options, lim, size);
        expect(n.blksize === 512 || (n.blksize >= 8 && n.blksize <= lim.maxBlksize)).toBe(true);
        expect(n.windowsize >= 1 && n.windowsize <= Math.max(1, lim.maxWindowsize)).toBe(true);
        if (n.timeoutMs !== null) expect(n.timeoutMs >= 1000 && n.timeoutMs <= 255_000).toBe(true);
        for (const a of n.accepted) expect(a.value).toMatch(/^[0-9]+$/);
        expect(n.accepted.length).toBeLessThanOrEqual(options.length);
      }),
      { numRuns: 2000 },
    );
  });
});
