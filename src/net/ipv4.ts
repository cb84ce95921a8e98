/** IPv4 helpers on 32-bit unsigned integers: pools, subnets and leases are arithmetic on these. */

export function parseIpv4(text: string): number | null {
  // A character loop rather than split + regex: every DHCP packet parses several addresses.
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  const s = text.trim();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return null;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros ("010" is octal to some parsers), at most three digits, at most 255.
      if (digits === 1 && octet === 0) return null;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return null;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return value * 256 + octet;
}

export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

export interface Cidr {
  network: number;
  prefix: number;
  /** First and last address of the block (network and broadcast for prefixes below /31). */
  first: number;
  last: number;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "10.0.0.0/24"; host bits must be zero so that a typo is not silently widened. */
export function parseCidr(text: string): Cidr | null {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(text.trim());
  if (!m) return null;
  const address = parseIpv4(m[1]!);
  const prefix = Number(m[2]);
  if (address === null || prefix > 32) return null;
  const mask = maskOf(prefix);
  if ((address & ~mask) >>> 0 !== 0) return null;
  return { network: address, prefix, first: address, last: (address | ~mask) >>> 0 };
}

/** A CIDR, or a single address as a /32 (an allow-list entry). */
export function parseAddressOrCidr(text: string): Cidr | null {
  return parseCidr(text.includes('/') ? text : `${text}/32`);
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ip >= c.first && ip <= c.last;
}

/** Addresses a host may hold: the block minus network and broadcast (except /31 and /32). */
export function isUsableHost(c: Cidr, ip: number): boolean {
  if (!cidrContains(c, ip)) return false;
  if (c.prefix >= 31) return true;
  return ip !== c.first && ip !== c.last;
}

/** A range of validated dotted-quad addresses (a subnet's pool) as integers. */
export function parseIpv4Range(r: { start: string; end: string }): { start: number; end: number } {
  return { start: parseIpv4(r.start)!, end: parseIpv4(r.end)! };
}
