import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientKey, LoadBalance, loadBalanceHash } from '../../src/dhcp/load-balance.js';
import { macToChaddr, type DhcpPacket } from '../../src/dhcp/wire/codec.js';
import { AddressPool } from '../../src/dhcp/pool.js';

const macBytes = fc.uint8Array({ minLength: 6, maxLength: 6 });

describe('RFC 3074 load balancing between nodes on one segment', () => {
  it('hashes like the RFC: the key length seeds the hash, bytes are mixed from the last to the first', () => {
    // With a one-byte key k the hash is MIX[1 ^ k]: the table is a permutation of 0..255.
    const singles = Array.from({ length: 256 }, (_, k) => loadBalanceHash(Uint8Array.of(k)));
    expect(new Set(singles).size).toBe(256);
    expect(singles[1]).toBe(251); // MIX[0], the table's first entry
    expect(singles[0]).toBe(175); // MIX[1]
    // Order matters, as a Pearson hash's does.
    expect(loadBalanceHash(Uint8Array.of(1, 2))).not.toBe(loadBalanceHash(Uint8Array.of(2, 1)));
  });

  it('gives every client to exactly one live node, whoever is alive, and only moves the dead nodes\' clients', () => {
    fc.assert(
      fc.property(fc.array(macBytes, { minLength: 1, maxLength: 50 }), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), (keys, aliveFlags) => {
        const names = ['a', 'b', 'c'];
        const alive = new Set(names.filter((_, i) => aliveFlags[i]));
        const nodes = names.map((self) => new LoadBalance(self, names.filter((n) => n !== self), (n) => alive.has(n)));
        const allAlive = names.map((self) => new LoadBalance(self, names.filter((n) => n !== self), () => true));
        for (const key of keys) {
          const servers = names.filter((n, i) => alive.has(n) && nodes[i]!.serves(key));
          if (alive.size > 0) expect(servers).toHaveLength(1);
          const owner = names.find((_, i) => allAlive[i]!.serves(key))!;
          if (alive.has(owner)) expect(servers).toEqual([owner]);
        }
      }),
    );
  });

  it('keys a client by its MAC whatever client identifier it sends, so one node answers a whole boot (PXE ROM, iPXE, the system)', () => {
    const mac = '52:54:00:12:34:56';
    const packet = (clientId?: Uint8Array) => ({ mac, htype: 1, hlen: 6, chaddr: macToChaddr(mac), options: { clientId } }) as unknown as DhcpPacket;
    const keys = [packet(), packet(Uint8Array.of(1, 0x52, 0x54, 0, 0x12, 0x34, 0x56)), packet(Uint8Array.of(0xff, 1, 2, 3, 4))].map(clientKey);
    for (const key of keys) expect([...key]).toEqual([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
  });

  it('splits clients about evenly between two nodes', () => {
    const a = new LoadBalance('a', ['b'], () => true);
    let served = 0;
    for (let i = 0; i < 2000; i++) if (a.serves(Uint8Array.of(0x52, 0x54, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255))) served++;
    expect(served).toBeGreaterThan(800);
    expect(served).toBeLessThan(1200);
  });

  it("hands out a node's own share of the pool first, then the rest", () => {
    const pool = new AddressPool([{ start: 10, end: 15 }], { index: 1, of: 2 });
    const got: number[] = [];
    for (let ip = pool.allocate(0); ip !== null; ip = pool.allocate(0)) {
      got.push(ip);
      pool.hold(ip, 60_000);
    }
    expect(got).toEqual([11, 13, 15, 10, 12, 14]);
  });
});
