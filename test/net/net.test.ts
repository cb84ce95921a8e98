import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeMac, pxelinuxMacName } from '../../src/net/mac.js';
import { cidrContains, formatIpv4, isUsableHost, parseCidr, parseIpv4 } from '../../src/net/ipv4.js';

describe('MAC spellings', () => {
  it.each([
    ['52:54:00:12:34:56', '52:54:00:12:34:56'],
    ['52-54-00-12-34-56', '52:54:00:12:34:56'],
    ['5254.0012.3456', '52:54:00:12:34:56'],
    ['525400123456', '52:54:00:12:34:56'],
    ['AA:BB:CC:DD:EE:FF', 'aa:bb:cc:dd:ee:ff'],
    [' aabb.ccdd.eeff ', 'aa:bb:cc:dd:ee:ff'],
  ])('%s → %s', (input, out) => expect(normalizeMac(input)).toBe(out));

  it.each(['', 'zz:bb:cc:dd:ee:ff', '52:54:00:12:34', '52:54-00:12:34:56', '52:54:00:12:34:56:78', '5254.0012.345'])(
    'rejects %j',
    (input) => expect(normalizeMac(input)).toBeNull(),
  );

  it('renders the pxelinux name', () => expect(pxelinuxMacName('52:54:00:12:34:56')).toBe('01-52-54-00-12-34-56'));
});

describe('IPv4', () => {
  it('parses and formats', () => {
    expect(parseIpv4('10.0.0.1')).toBe(0x0a000001);
    expect(formatIpv4(0xc0a80101)).toBe('192.168.1.1');
    for (const bad of ['10.0.0', '10.0.0.256', '01.0.0.1', 'a.b.c.d', '10.0.0.1.2', '', '...', '1..2.3', '.1.2.3', '1.2.3.', '0.0.0.00', '1.2.3.1000', '1.2.3.4 5', '1.2.3.-4', '1.2.3.4/8'])
      expect(parseIpv4(bad), bad).toBeNull();
    expect(parseIpv4(' 0.0.0.0 ')).toBe(0);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
  });
  it('formats and parses every address as mirror images', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (ip) => parseIpv4(formatIpv4(ip)) === ip));
    fc.assert(fc.property(fc.ipV4(), (text) => formatIpv4(parseIpv4(text)!) === text));
  });
  it('parses CIDRs strictly', () => {
    const c = parseCidr('10.0.0.0/24')!;
    expect(c.first).toBe(parseIpv4('10.0.0.0'));
    expect(c.last).toBe(parseIpv4('10.0.0.255'));
    expect(parseCidr('10.0.0.1/24')).toBeNull();
    expect(parseCidr('10.0.0.0/33')).toBeNull();
    expect(cidrContains(c, parseIpv4('10.0.0.77')!)).toBe(true);
    expect(isUsableHost(c, parseIpv4('10.0.0.0')!)).toBe(false);
    expect(isUsableHost(c, parseIpv4('10.0.0.255')!)).toBe(false);
    expect(isUsableHost(c, parseIpv4('10.0.0.1')!)).toBe(true);
  });
});
