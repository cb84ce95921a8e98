import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/dhcp/ratelimit.js';

const MAC = '52:54:00:00:00:01';

describe('RateLimiter: a token bucket per MAC and one shared by unknown MACs', () => {
  it('lets a MAC burst to twice its rate, then refuses it until its bucket refills', () => {
    const limiter = new RateLimiter(5, 1000);
    const verdicts = Array.from({ length: 12 }, () => limiter.allow(MAC, 0, true));
    expect(verdicts.filter((v) => v === 'ok')).toHaveLength(10);
    expect(verdicts.slice(10)).toEqual(['per-mac', 'per-mac']);
    // 5 per second: after 200 ms one more packet, and only one.
    expect(limiter.allow(MAC, 200, true)).toBe('ok');
    expect(limiter.allow(MAC, 200, true)).toBe('per-mac');
    // Another MAC is not held back by the first one's flood.
    expect(limiter.allow('52:54:00:00:00:02', 200, true)).toBe('ok');
  });

  it('holds unknown MACs to the shared rate, and known machines only to their own', () => {
    const limiter = new RateLimiter(5, 3);
    const unknown = [1, 2, 3, 4].map((i) => limiter.allow(`02:00:00:00:00:0${i}`, 0, false));
    expect(unknown).toEqual(['ok', 'ok', 'ok', 'global']);
    expect(limiter.allow(MAC, 0, true)).toBe('ok');
    // A second later the shared bucket holds three again.
    expect(limiter.allow('02:00:00:00:00:04', 1000, false)).toBe('ok');
  });

  it('gives a MAC refused by the shared limit a full burst once it gets through', () => {
    const limiter = new RateLimiter(2, 1);
    expect(limiter.allow('02:00:00:00:00:01', 0, false)).toBe('ok');
    expect(limiter.allow(MAC, 0, false)).toBe('global');
    // Known now (an operator registered it): its own bucket starts full, at 4.
    const verdicts = Array.from({ length: 5 }, () => limiter.allow(MAC, 0, true));
    expect(verdicts).toEqual(['ok', 'ok', 'ok', 'ok', 'per-mac']);
  });
});
