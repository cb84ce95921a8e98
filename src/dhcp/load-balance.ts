import type { DhcpPacket } from './wire/codec.js';

/** RFC 3074 §6: 256 distinct values in pseudo-random order, the hash's mixing table. */
const MIX = Uint8Array.from([
  251, 175, 119, 215, 81, 14, 79, 191, 103, 49, 181, 143, 186, 157, 0, 232, 31, 32, 55, 60, 152, 58, 17, 237, 174, 70, 160, 144, 220, 90, 57, 223,
  59, 3, 18, 140, 111, 166, 203, 196, 134, 243, 124, 95, 222, 179, 197, 65, 180, 48, 36, 15, 107, 46, 233, 130, 165, 30, 123, 161, 209, 23, 97, 16,
  40, 91, 219, 61, 100, 10, 210, 109, 250, 127, 22, 138, 29, 108, 244, 67, 207, 9, 178, 204, 74, 98, 126, 249, 167, 116, 34, 77, 193, 200, 121, 5,
  20, 113, 71, 35, 128, 13, 182, 94, 25, 226, 227, 199, 75, 27, 41, 245, 230, 224, 43, 225, 177, 26, 155, 150, 212, 142, 218, 115, 241, 73, 88, 105,
  39, 114, 62, 255, 192, 201, 145, 214, 168, 158, 221, 148, 154, 122, 12, 84, 82, 163, 44, 139, 228, 236, 205, 242, 217, 11, 187, 146, 159, 64, 86,
  239, 195, 42, 106, 198, 118, 112, 184, 172, 87, 2, 173, 117, 176, 229, 247, 253, 137, 185, 99, 164, 102, 147, 45, 66, 231, 52, 141, 211, 194, 206,
  246, 238, 56, 110, 78, 248, 63, 240, 189, 93, 92, 51, 53, 183, 19, 171, 72, 50, 33, 104, 101, 69, 8, 252, 83, 120, 76, 135, 85, 54, 202, 125, 188,
  213, 96, 235, 136, 208, 162, 129, 190, 132, 156, 38, 47, 1, 7, 254, 24, 4, 216, 131, 89, 21, 28, 133, 37, 153, 149, 80, 170, 68, 6, 169, 234, 151,
]);

/** RFC 3074 §6: the Pearson hash of a client's key (its client identifier, else its hardware address). */
export function loadBalanceHash(key: Uint8Array): number {
  let hash = key.length & 0xff;
  for (let i = key.length; i > 0; ) hash = MIX[hash ^ key[--i]!]!;
  return hash;
}

/**
 * The bytes a client is hashed by: its hardware address. RFC 3074 (and Kea) prefer option 61
 * when present, but one network boot is several DHCP clients (the NIC's PXE ROM, iPXE, the
 * booted system), which send different client identifiers or none; by chaddr one node answers
 * the whole boot, as livery knows machines by MAC anyway.
 */
export function clientKey(p: DhcpPacket): Uint8Array {
  return p.chaddr.subarray(0, p.hlen);
}

/**
 * Which clients this node answers when several nodes serve one segment (dhcp.peers): the
 * members are this node and its peers, sorted by name, so every node computes the same
 * split; a client belongs to member hash % n. A member that is not alive has its clients
 * answered by the next live member after it, so a dead node's clients are taken over by one
 * node, not by all.
 */
export class LoadBalance {
  readonly members: readonly string[];
  /** This node's place among the members: also its share of each pool (AddressPool). */
  readonly index: number;

  constructor(
    private readonly self: string,
    peers: readonly string[],
    /** Whether a peer answers DHCP now (its heartbeat is fresh); asked per packet, so answer from memory. */
    private readonly alive: (node: string) => boolean,
  ) {
    this.members = [...new Set([self, ...peers])].sort();
    this.index = this.members.indexOf(self);
  }

  /** Whether this node answers the client whose key is `key`. */
  serves(key: Uint8Array): boolean {
    const n = this.members.length;
    if (n === 1) return true;
    const owner = loadBalanceHash(key) % n;
    for (let k = 0; k < n; k++) {
      const member = this.members[(owner + k) % n]!;
      if (member === this.self) return true;
      if (this.alive(member)) return false;
    }
    return true;
  }
}
