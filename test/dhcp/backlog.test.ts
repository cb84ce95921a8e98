import { describe, expect, it } from 'vitest';
import { Backlog } from '../../src/dhcp/backlog.js';

interface Item {
  id: string;
  at: number;
  discover: boolean;
}

const drain = (b: Backlog<Item>, now: number) => {
  const served: string[] = [];
  const stale: string[] = [];
  for (let item = b.next(now, (s) => stale.push(s.id)); item; item = b.next(now, (s) => stale.push(s.id))) served.push(item.id);
  return { served, stale };
};

describe('DHCP backlog: which waiting packet is answered next', () => {
  it('answers requests oldest first, all before any DISCOVER, and DISCOVERs newest first', () => {
    const b = new Backlog<Item>(2000);
    b.push({ id: 'd1', at: 1, discover: true });
    b.push({ id: 'r1', at: 2, discover: false });
    b.push({ id: 'd2', at: 3, discover: true });
    b.push({ id: 'r2', at: 4, discover: false });
    b.push({ id: 'd3', at: 5, discover: true });
    expect(b.size).toBe(5);
    expect(drain(b, 10)).toEqual({ served: ['r1', 'r2', 'd3', 'd2', 'd1'], stale: [] });
    expect(b.size).toBe(0);
  });

  it('drops what waited too long, oldest DISCOVERs first, so a flood leaves the queue bounded', () => {
    const b = new Backlog<Item>(1000);
    for (let i = 0; i < 5000; i++) b.push({ id: `d${i}`, at: i, discover: true });
    b.push({ id: 'r-old', at: 100, discover: false });
    b.push({ id: 'r-new', at: 4900, discover: false });
    const first = b.next(5000, () => undefined);
    expect(first?.id).toBe('r-new');
    // Every DISCOVER from before 4000 went stale; the newest of the rest is answered next.
    const stale: string[] = [];
    expect(b.next(5000, (s) => stale.push(s.id))?.id).toBe('d4999');
    expect(stale).toHaveLength(4000);
    expect(stale[0]).toBe('d0');
    expect(b.size).toBe(999);
  });
});
