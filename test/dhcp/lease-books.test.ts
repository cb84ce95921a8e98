import { describe, expect, it } from 'vitest';
import type { StoredLease } from '../../src/cmdb/leases.js';
import type { Subnet } from '../../src/cmdb/types.js';
import { LeaseBooks } from '../../src/dhcp/lease-book.js';
import { parseIpv4 } from '../../src/net/ipv4.js';

const ip = (s: string) => parseIpv4(s)!;
const SUBNET: Subnet = {
  id: 1,
  name: 'lan',
  cidr: '10.0.0.0/24',
  gateway: null,
  dns: [],
  domain: null,
  pools: [{ start: '10.0.0.100', end: '10.0.0.103' }],
  leaseSeconds: 3600,
  policy: 'discover',
  discoverAction: 'retry',
  defaultImage: { name: null, channel: null },
  secureBoot: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};
const A = '52:54:00:00:0a:01';
const B = '52:54:00:00:0b:01';

/** Books of node `index` of two, over a lease table the test writes as the other node would. */
function books(index: number, table: StoredLease[]) {
  return new LeaseBooks(
    { subnets: () => [SUBNET], leasesIn: () => table.filter((l) => l.subnetId === 1), leasesChangedSince: (since) => table.filter((l) => l.updatedAt > since),
      leaseOf: (mac) => table.filter((l) => l.mac === mac).sort((x, y) => y.updatedAt - x.updatedAt)[0] ?? null,
    },
    { offerHoldSeconds: 60, declineQuarantineSeconds: 600, share: { index, of: 2 } },
  );
}
const row = (mac: string, addr: string, updatedAt: number, state: StoredLease['state'] = 'bound'): StoredLease => ({
  ip: addr,
  mac,
  subnetId: 1,
  state,
  expiresAt: updatedAt + 3_600_000,
  clientId: null,
  hostname: null,
  updatedAt,
});

describe('lease books shared by two nodes', () => {
  it("takes another node's lease over its own offer of that address, and a later release frees it", () => {
    const now = Date.now();
    const b = books(1, []);
    const book = b.containing(ip('10.0.0.100'))!;
    // Node 1's share comes first: .101, then .103.
    expect(b.offer(book, B, null, null, now, true)).toBe(ip('10.0.0.101'));
    b.learn(row(A, '10.0.0.101', now + 1), now + 1);
    expect(b.holder(book, ip('10.0.0.101'), now + 2)?.mac).toBe(A);
    expect(b.availableTo(book, ip('10.0.0.101'), B, now + 2)).toBe(false);
    expect(b.holdingOf(book, B)).toBeNull();
    expect(b.offer(book, B, null, null, now + 2, true)).toBe(ip('10.0.0.103'));
    b.learn({ ...row(A, '10.0.0.101', now + 3, 'released'), expiresAt: now + 3 }, now + 4);
    expect(b.holder(book, ip('10.0.0.101'), now + 4)).toBeNull();
    expect(b.availableTo(book, ip('10.0.0.101'), B, now + 4)).toBe(true);
  });

  it('does not let an older row undo a lease this node bound since', () => {
    const now = Date.now();
    const b = books(0, []);
    const book = b.containing(ip('10.0.0.100'))!;
    b.bind(book, B, ip('10.0.0.100'), now, { clientId: null, hostname: null, reserved: false });
    b.learn(row(A, '10.0.0.100', now - 10), now);
    expect(b.holder(book, ip('10.0.0.100'), now)?.mac).toBe(B);
  });

  it('gives up a binding whose claim the database refused, however recent, so the client gets another address', () => {
    const now = Date.now();
    const b = books(0, []);
    const book = b.containing(ip('10.0.0.100'))!;
    b.bind(book, B, ip('10.0.0.100'), now, { clientId: null, hostname: null, reserved: false });
    b.learn(row(A, '10.0.0.100', now - 10), now, true);
    expect(b.holder(book, ip('10.0.0.100'), now)?.mac).toBe(A);
    expect(b.holdingOf(book, B)).toBeNull();
    expect(b.offer(book, B, null, null, now, true)).toBe(ip('10.0.0.102'));
  });

  it('offers a client the address another node leased it a moment ago, before following the table has brought the row', () => {
    const now = Date.now();
    const table: StoredLease[] = [];
    const b = books(1, table);
    const book = b.containing(ip('10.0.0.100'))!;
    // Node 0 leased .100 (its own share) to A just now; this node has not looked at the table since.
    table.push(row(A, '10.0.0.100', now + 1));
    expect(b.offer(book, A, null, null, now + 2, true)).toBe(ip('10.0.0.100'));
    // A client no node has leased anything takes from this node's share.
    expect(b.offer(book, B, null, null, now + 2, true)).toBe(ip('10.0.0.101'));
  });

  it("follows the other node's rows on refresh, about once a second", async () => {
    const table: StoredLease[] = [];
    const b = books(0, table);
    const book = b.containing(ip('10.0.0.100'))!;
    table.push(row(A, '10.0.0.100', Date.now()));
    await new Promise((r) => setTimeout(r, 1010));
    b.refresh();
    expect(b.holder(book, ip('10.0.0.100'), Date.now())?.mac).toBe(A);
    expect(b.offer(book, B, null, null, Date.now(), true)).toBe(ip('10.0.0.102'));
  });

  it('takes in a row stamped by a node whose clock is up to 2 s behind, after it saw newer rows', async () => {
    const table: StoredLease[] = [];
    const b = books(0, table);
    const book = b.containing(ip('10.0.0.100'))!;
    const seen = Date.now();
    table.push(row(A, '10.0.0.100', seen));
    await new Promise((r) => setTimeout(r, 1010));
    b.refresh();
    // Committed after that look, by a node whose clock runs 1.9 s behind.
    table.push(row(B, '10.0.0.102', seen - 1900));
    await new Promise((r) => setTimeout(r, 1010));
    b.refresh();
    expect(b.holder(book, ip('10.0.0.102'), Date.now())?.mac).toBe(B);
  });
});
