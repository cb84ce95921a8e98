import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BootOp, decodeDhcp, encodeDhcp, formatMac, macToChaddr, type DhcpPacket, type DhcpPacketInit } from '../../src/dhcp/wire/codec.js';
import { DHCP_DECODE_ERROR_KINDS, type DhcpDecodeErrorKind } from '../../src/dhcp/wire/errors.js';
import {
  DHCP_OPTIONS,
  DhcpMessageType,
  messageTypeName,
  relayAgentInfo,
  userClasses,
  type DhcpOptions,
} from '../../src/dhcp/wire/options.js';
import type { Tlv } from '../../src/dhcp/wire/bytes.js';
import {
  ClientArch,
  PxeDiscoveryControl,
  clientUuid,
  decodePxeVendorOptions,
  encodePxeVendorOptions,
  ipxeInfo,
  type PxeVendorOptions,
} from '../../src/dhcp/wire/pxe.js';

// Property runs are synchronous, so vitest's timeout cannot stop them: bound each
// run (shrinking included) here instead. A failure found before the limit is
// still reported; hitting the limit without one just ends the run early.
fc.configureGlobal({ interruptAfterTimeLimit: 20_000 });

// --- helpers -----------------------------------------------------------------

/** Values pinned by test/helpers/capture-dhcp.ts when the fixtures were captured. */
const CLIENT_MAC = '52:54:00:6c:69:76';
const CLIENT_UUID = '6c697665-7279-4000-8000-0123456789ab';
const CLIENT_ID = Uint8Array.of(1, 0x52, 0x54, 0x00, 0x6c, 0x69, 0x76); // type 1 (Ethernet) + MAC

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/dhcp/${name}.bin`, import.meta.url));

function decodeOk(bytes: Uint8Array): DhcpPacket {
  const result = decodeDhcp(bytes);
  if (!result.ok) throw new Error(`expected a packet, got ${result.error.kind}: ${result.error.message}`);
  return result.packet;
}

function decodeKind(bytes: Uint8Array): DhcpDecodeErrorKind | 'ok' {
  const result = decodeDhcp(bytes);
  return result.ok ? 'ok' : result.error.kind;
}

/**
 * A packet assembled byte by byte, independently of encodeDhcp: BOOTREQUEST from
 * CLIENT_MAC with the magic cookie, then `options` verbatim (callers add END).
 */
function rawPacket(parts: { options: number[]; op?: number; htype?: number; hlen?: number; sname?: number[]; file?: number[]; cookie?: number[] }): Uint8Array {
  const out = new Uint8Array(240 + parts.options.length);
  out.set([parts.op ?? 1, parts.htype ?? 1, parts.hlen ?? 6, 0, 0xde, 0xad, 0xbe, 0xef]);
  out.set(macToChaddr(CLIENT_MAC), 28);
  out.set(parts.sname ?? [], 44);
  out.set(parts.file ?? [], 108);
  out.set(parts.cookie ?? [99, 130, 83, 99], 236);
  out.set(parts.options, 240);
  return out;
}

const ascii = (text: string): number[] => [...Buffer.from(text, 'latin1')];
const END = 255;

/** Decoding what we encoded must give back exactly the value that went in. */
function expectMirror(packet: DhcpPacket): void {
  expect(decodeOk(encodeDhcp(packet))).toEqual(packet);
}

// --- arbitraries ---------------------------------------------------------------

const byteArb = fc.integer({ min: 0, max: 255 });
const ipArb = fc.tuple(byteArb, byteArb, byteArb, byteArb).map((b) => b.join('.'));
/** Usually `short`; one time in ten `long`, past 255 bytes, so RFC 3396 splitting is exercised. */
const mostlyShort = <T>(short: fc.Arbitrary<T>, long: fc.Arbitrary<T>) => fc.oneof({ arbitrary: short, weight: 9 }, { arbitrary: long, weight: 1 });
/** Any well-formed Unicode (NUL and control characters included). */
const textArb = mostlyShort(fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }), fc.string({ unit: 'binary', minLength: 70, maxLength: 150 }));
const bytesArb = (minLength: number) => mostlyShort(fc.uint8Array({ minLength, maxLength: 24 }), fc.uint8Array({ minLength: 256, maxLength: 600 }));
const u16Arb = fc.integer({ min: 0, max: 0xffff });
const u32Arb = fc.integer({ min: 0, max: 0xffffffff });
const KNOWN_CODES = new Set<number>(DHCP_OPTIONS.map((o) => o.code));
const unknownCodeArb = fc.integer({ min: 1, max: 254 }).filter((c) => c !== 52 && !KNOWN_CODES.has(c));

const optionsArb: fc.Arbitrary<DhcpOptions> = fc.record(
  {
    messageType: fc.constantFrom(...Object.values(DhcpMessageType)),
    subnetMask: ipArb,
    routers: mostlyShort(fc.array(ipArb, { minLength: 1, maxLength: 3 }), fc.array(ipArb, { minLength: 64, maxLength: 80 })),
    dnsServers: fc.array(ipArb, { minLength: 1, maxLength: 4 }),
    hostname: textArb,
    domainName: textArb,
    broadcastAddress: ipArb,
    ntpServers: fc.array(ipArb, { minLength: 1, maxLength: 4 }),
    vendorSpecific: bytesArb(1),
    requestedIp: ipArb,
    leaseTime: u32Arb,
    serverId: ipArb,
    parameterRequestList: mostlyShort(fc.array(byteArb, { minLength: 1, maxLength: 30 }), fc.array(byteArb, { minLength: 256, maxLength: 300 })),
    message: textArb,
    maxMessageSize: u16Arb,
    renewalTime: u32Arb,
    rebindingTime: u32Arb,
    vendorClassId: textArb,
    clientId: bytesArb(2),
    tftpServerName: textArb,
    bootfileName: textArb,
    userClass: bytesArb(1),
    relayAgentInfo: bytesArb(1),
    clientArch: fc.array(u16Arb, { minLength: 1, maxLength: 4 }),
    clientNdi: fc.record({ type: byteArb, major: byteArb, minor: byteArb }),
    clientUuid: bytesArb(1),
    ipxe: bytesArb(1),
  },
  { requiredKeys: [] },
);

/** Half the time only a handful of options, so packets under the 300-byte minimum get padded. */
const someOptionsArb: fc.Arbitrary<DhcpOptions> = fc.oneof(
  optionsArb,
  fc.tuple(optionsArb, fc.integer({ min: 0, max: 3 })).map(([options, n]) => Object.fromEntries(Object.entries(options).slice(0, n))),
);

const unknownOptionsArb: fc.Arbitrary<Tlv[]> = fc.uniqueArray(
  fc.record({ code: unknownCodeArb, data: mostlyShort(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ minLength: 256, maxLength: 400 })) }),
  { selector: (o) => o.code, maxLength: 4 },
);

/** sname/file strings: no NUL (it terminates the field) and room for the terminator. */
const fieldArb = (maxBytes: number) =>
  fc.string({ unit: 'binary', maxLength: maxBytes }).filter((s) => !s.includes('\0') && Buffer.byteLength(s) <= maxBytes - 1);

/** Ethernet, or another hardware type with any length up to 16; chaddr keeps all 16 bytes either way. */
const hardwareArb = fc.oneof(
  fc.constant({ htype: 1, hlen: 6 }),
  fc.record({ htype: byteArb.filter((t) => t !== 1), hlen: fc.integer({ min: 0, max: 16 }) }),
);

function packetArb(
  fields: fc.Arbitrary<{ sname: string | null; file: string | null }>,
  options: fc.Arbitrary<DhcpOptions>,
  unknown: fc.Arbitrary<Tlv[]>,
): fc.Arbitrary<DhcpPacket> {
  return fc
    .record({
      op: fc.constantFrom(BootOp.REQUEST, BootOp.REPLY),
      hardware: hardwareArb,
      hops: byteArb,
      xid: u32Arb,
      secs: u16Arb,
      broadcast: fc.boolean(),
      ciaddr: ipArb,
      yiaddr: ipArb,
      siaddr: ipArb,
      giaddr: ipArb,
      chaddr: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fields,
      options,
      unknownOptions: unknown,
    })
    .map(({ hardware, fields: f, ...rest }) => ({
      ...rest,
      ...hardware,
      ...f,
      mac: hardware.htype === 1 ? formatMac(rest.chaddr.subarray(0, 6)) : null,
    }));
}

/** encodeDhcp, or undefined when the options overflow options + file + sname (refusal tested on its own). */
function encodeIfFits(packet: DhcpPacket): Buffer | undefined {
  try {
    return encodeDhcp(packet);
  } catch (error) {
    if (error instanceof RangeError && /do not fit/.test(error.message)) return undefined;
    throw error;
  }
}

const plainPacketArb = packetArb(fc.record({ sname: fieldArb(64), file: fieldArb(128) }), someOptionsArb, unknownOptionsArb);

// Options sized so that with sname/file offered they often spill over into them but mostly still fit.
const smallText = fc.string({ minLength: 1, maxLength: 70, size: 'max' });
const overloadedPacketArb = packetArb(
  fc.constantFrom({ sname: null, file: null }, { sname: 'boot-server', file: null }, { sname: null, file: 'undionly.kpxe' }),
  fc.record(
    {
      messageType: fc.constantFrom(...Object.values(DhcpMessageType)),
      serverId: ipArb,
      hostname: smallText,
      domainName: smallText,
      bootfileName: smallText,
      vendorClassId: smallText,
      parameterRequestList: fc.array(byteArb, { minLength: 1, maxLength: 60, size: 'max' }),
      vendorSpecific: fc.uint8Array({ minLength: 60, maxLength: 120, size: 'max' }),
      routers: fc.array(ipArb, { minLength: 1, maxLength: 8 }),
    },
    { requiredKeys: ['vendorSpecific'] },
  ),
  fc.uniqueArray(fc.record({ code: unknownCodeArb, data: fc.uint8Array({ maxLength: 60, size: 'max' }) }), { selector: (o) => o.code, maxLength: 3 }),
);

// --- real clients ----------------------------------------------------------------

describe('real client DISCOVERs (test/fixtures/dhcp)', () => {
  const FIXTURES = ['dhclient-discover', 'udhcpc-discover', 'ipxe-bios-discover', 'ipxe-efi-discover', 'ovmf-pxe-discover'];

  it.each(FIXTURES)('%s: a DISCOVER from the pinned MAC that re-encodes to the same value', (name) => {
    const packet = decodeOk(fixture(name));
    expect(packet.op).toBe(BootOp.REQUEST);
    expect(packet.options.messageType).toBe(DhcpMessageType.DISCOVER);
    expect(packet.mac).toBe(CLIENT_MAC);
    expect(packet.chaddr).toEqual(macToChaddr(CLIENT_MAC));
    expect([packet.ciaddr, packet.yiaddr, packet.giaddr]).toEqual(['0.0.0.0', '0.0.0.0', '0.0.0.0']);
    expect([packet.sname, packet.file]).toEqual(['', '']);
    expect(packet.unknownOptions).toEqual([]);
    expectMirror(packet);
  });

  it('dhclient (stock Debian config): host name and request list, no client id or PXE options', () => {
    const bytes = fixture('dhclient-discover');
    const packet = decodeOk(bytes);
    expect(packet.options).toEqual({
      messageType: DhcpMessageType.DISCOVER,
      hostname: 'livery-dhclient',
      // subnet-mask, broadcast-address, time-offset, routers, domain-name, domain-name-servers,
      // domain-search, host-name, netbios-name-servers, netbios-scope, interface-mtu,
      // rfc3442-classless-static-routes, ntp-servers: the request line of /etc/dhcp/dhclient.conf.
      parameterRequestList: [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42],
    });
    expect(packet.broadcast).toBe(false);
    expect(userClasses(packet)).toEqual([]);
    // dhclient writes options in our order and pads to 300 like we do, so re-encoding is byte-exact.
    expect(encodeDhcp(packet)).toEqual(bytes);
  });

  it('udhcpc: client id, vendor class and RFC 3004 user classes', () => {
    const packet = decodeOk(fixture('udhcpc-discover'));
    expect(packet.options.clientId).toEqual(CLIENT_ID);
    expect(packet.options.vendorClassId).toBe('udhcp 1.35.0');
    expect(packet.options.hostname).toBe('livery-udhcpc');
    expect(packet.options.maxMessageSize).toBe(576);
    expect(packet.options.parameterRequestList).toEqual([1, 3, 6, 12, 15, 28, 42]);
    expect(userClasses(packet)).toEqual(['livery', 'diskless']);
    expect(packet.options.clientArch).toBeUndefined();
  });

  // iPXE's request list: 1 3 6 7 12 15 17 26 43 60 66 67 119, 128-135 (PXE), 175 (iPXE), 203.
  const IPXE_REQUEST_LIST = [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203];

  it('iPXE under SeaBIOS: BIOS arch, UNDI 2.1, user class iPXE, SMBIOS UUID, iPXE features', () => {
    const packet = decodeOk(fixture('ipxe-bios-discover'));
    expect(packet.options.clientArch).toEqual([ClientArch.BIOS_X86]);
    expect(packet.options.clientNdi).toEqual({ type: 1, major: 2, minor: 1 });
    expect(packet.options.vendorClassId).toBe('PXEClient:Arch:00000:UNDI:002001');
    expect(packet.options.clientId).toEqual(CLIENT_ID);
    expect(packet.options.maxMessageSize).toBe(1472);
    expect(packet.options.parameterRequestList).toEqual(IPXE_REQUEST_LIST);
    expect(userClasses(packet)).toEqual(['iPXE']);
    expect(clientUuid(packet)).toBe(CLIENT_UUID);
    const info = ipxeInfo(packet);
    expect(info?.version).toBe('1.0.0');
    expect(info?.features).toEqual(expect.arrayContaining(['http', 'dns', 'tftp', 'pxe', 'bzimage', 'elf', 'menu']));
    expect(info?.features).not.toContain('efi');
  });

  it('iPXE under OVMF: x64 UEFI arch, UNDI 3.10, user class iPXE, EFI feature', () => {
    const packet = decodeOk(fixture('ipxe-efi-discover'));
    expect(packet.options.clientArch).toEqual([ClientArch.UEFI_X64]);
    expect(packet.options.clientNdi).toEqual({ type: 1, major: 3, minor: 10 });
    expect(packet.options.vendorClassId).toBe('PXEClient:Arch:00007:UNDI:003010');
    expect(packet.options.clientId).toEqual(CLIENT_ID);
    expect(packet.options.parameterRequestList).toEqual(IPXE_REQUEST_LIST);
    expect(userClasses(packet)).toEqual(['iPXE']);
    expect(clientUuid(packet)).toBe(CLIENT_UUID);
    expect(ipxeInfo(packet)?.features).toEqual(expect.arrayContaining(['efi', 'http']));
    expect(ipxeInfo(packet)?.features).not.toContain('pxe');
  });

  it("OVMF's own PXE (no iPXE): x64 UEFI arch, UNDI 3.0, broadcast flag, no user class or option 175", () => {
    const packet = decodeOk(fixture('ovmf-pxe-discover'));
    expect(packet.options.clientArch).toEqual([ClientArch.UEFI_X64]);
    expect(packet.options.clientNdi).toEqual({ type: 1, major: 3, minor: 0 });
    expect(packet.options.vendorClassId).toBe('PXEClient:Arch:00007:UNDI:003000');
    expect(packet.broadcast).toBe(true);
    expect(packet.options.clientId).toBeUndefined();
    expect(packet.options.maxMessageSize).toBe(1472);
    expect(packet.options.parameterRequestList).toEqual([
      1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135,
    ]);
    expect(userClasses(packet)).toEqual([]);
    expect(ipxeInfo(packet)).toBeUndefined();
    expect(clientUuid(packet)).toBe(CLIENT_UUID);
  });
});

// --- mirror images -----------------------------------------------------------------

describe('encode and decode are mirror images', () => {
  it('decode(encode(p)) equals p for any packet', () => {
    fc.assert(fc.property(plainPacketArb, (packet) => expectMirror(packet)), { numRuns: 300 });
  });

  it('decode(encode(p)) equals p when sname/file carry options (option 52), within a 576-byte message', () => {
    fc.assert(
      fc.property(overloadedPacketArb, (packet) => {
        const bytes = encodeIfFits(packet);
        fc.pre(bytes !== undefined);
        expect(bytes.length).toBeLessThanOrEqual(576 - 28);
        expect(decodeOk(bytes)).toEqual(packet);
      }),
      { numRuns: 300 },
    );
  });

  it('any packet decode accepts either re-encodes to the same value or is refused with RangeError', () => {
    fc.assert(
      fc.property(mutatedPacketArb(), (bytes) => {
        const result = decodeDhcp(bytes);
        if (!result.ok) return;
        let reencoded: Buffer;
        try {
          reencoded = encodeDhcp(result.packet);
        } catch (error) {
          // e.g. a 64-byte sname with no NUL, which we decode but never write.
          expect(error).toBeInstanceOf(RangeError);
          return;
        }
        expect(decodeOk(reencoded)).toEqual(result.packet);
      }),
      { numRuns: 1000 },
    );
  });
});

// --- encoder -------------------------------------------------------------------------

describe('encodeDhcp', () => {
  const offer: DhcpPacketInit = {
    op: BootOp.REPLY,
    xid: 0x12345678,
    chaddr: macToChaddr(CLIENT_MAC),
    yiaddr: '192.0.2.50',
    siaddr: '192.0.2.1',
    file: 'undionly.kpxe',
    options: { messageType: DhcpMessageType.OFFER, serverId: '192.0.2.1', leaseTime: 3600, subnetMask: '255.255.255.0' },
  };

  it('fills defaults and lays out the BOOTP header, cookie, options and END at the RFC 2131 offsets', () => {
    const bytes = encodeDhcp(offer);
    expect(bytes.length).toBe(300);
    expect([...bytes.subarray(0, 12)]).toEqual([2, 1, 6, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]);
    expect([...bytes.subarray(16, 24)]).toEqual([192, 0, 2, 50, 192, 0, 2, 1]);
    expect(bytes.subarray(108, 108 + 14).toString('latin1')).toBe('undionly.kpxe\0');
    expect([...bytes.subarray(236, 240)]).toEqual([99, 130, 83, 99]);
    expect([...bytes.subarray(240, 240 + 22)]).toEqual([53, 1, 2, 1, 4, 255, 255, 255, 0, 51, 4, 0, 0, 0x0e, 0x10, 54, 4, 192, 0, 2, 1, END]);
    expect(bytes.subarray(262).every((b) => b === 0)).toBe(true);
  });

  it('writes options in table order whatever order the object lists them in', () => {
    const reordered = { ...offer, options: { subnetMask: '255.255.255.0', leaseTime: 3600, serverId: '192.0.2.1', messageType: DhcpMessageType.OFFER } };
    expect(encodeDhcp(reordered)).toEqual(encodeDhcp(offer));
  });

  it('splits an option longer than 255 bytes into consecutive instances (RFC 3396)', () => {
    const hostname = 'h'.repeat(300);
    const bytes = encodeDhcp({ ...offer, options: { hostname } });
    expect([...bytes.subarray(240, 242)]).toEqual([12, 255]);
    expect([...bytes.subarray(240 + 257, 240 + 259)]).toEqual([12, 45]);
    expect(bytes[240 + 259 + 45]).toBe(END);
    expect(decodeOk(bytes).options.hostname).toBe(hostname);
  });

  it('puts options into file and then sname when they are offered and the options field is full', () => {
    const options = { ...offer.options, vendorSpecific: new Uint8Array(250).fill(7), tftpServerName: 't'.repeat(100), bootfileName: 'b'.repeat(40) };
    const bytes = encodeDhcp({ ...offer, file: null, sname: null, options });
    // options: 52, 53, 1, 43, 51, 54 = 276 bytes; 66 (102 bytes) no longer fits in the 308 of a
    // 576-byte message, so it opens 'file'; 67 (42 bytes) does not fit there after it, so 'sname'.
    expect([...bytes.subarray(240, 243)]).toEqual([52, 1, 3]);
    expect(bytes[240 + 276]).toBe(END);
    expect(bytes.length).toBe(240 + 277);
    expect([...bytes.subarray(108, 110)]).toEqual([66, 100]);
    expect(bytes[108 + 102]).toBe(END);
    expect([...bytes.subarray(44, 46)]).toEqual([67, 40]);
    expect(bytes[44 + 42]).toBe(END);
    expect(decodeOk(bytes)).toMatchObject({ sname: null, file: null, options });
  });

  it('refuses values it cannot encode faithfully', () => {
    const bad: [string, DhcpPacketInit][] = [
      ['non-canonical address', { ...offer, yiaddr: '192.0.2.050' }],
      ['short address', { ...offer, options: { serverId: '192.0.2' } }],
      ['u16 out of range', { ...offer, options: { maxMessageSize: 70000 } }],
      ['unknown message type', { ...offer, options: { messageType: 99 as DhcpMessageType } }],
      ['empty list', { ...offer, options: { routers: [] } }],
      ['empty text', { ...offer, options: { hostname: '' } }],
      ['lone surrogate', { ...offer, options: { hostname: 'a\ud800b' } }],
      ['one-byte client id', { ...offer, options: { clientId: Uint8Array.of(1) } }],
      ['Ethernet with hlen 4', { ...offer, hlen: 4 }],
      ['17-byte chaddr', { ...offer, chaddr: new Uint8Array(17) }],
      ['file name without room for NUL', { ...offer, file: 'f'.repeat(128) }],
      ['NUL inside sname', { ...offer, sname: 'a\0b' }],
      ['known code as unknown option', { ...offer, unknownOptions: [{ code: 53, data: Uint8Array.of(1) }] }],
      ['overload code as unknown option', { ...offer, unknownOptions: [{ code: 52, data: Uint8Array.of(1) }] }],
      ['repeated unknown option', { ...offer, unknownOptions: [{ code: 200, data: Uint8Array.of(1) }, { code: 200, data: Uint8Array.of(2) }] }],
      ['options beyond file and sname', { ...offer, file: null, sname: null, options: { vendorSpecific: new Uint8Array(1000) } }],
    ];
    for (const [what, packet] of bad) expect(() => encodeDhcp(packet), what).toThrow(RangeError);
  });
});

// --- decoder: strict and tolerant ---------------------------------------------------------

describe('decodeDhcp rejects what no real client sends', () => {
  const cases: [string, DhcpDecodeErrorKind, Uint8Array][] = [
    ['empty input', 'truncated', new Uint8Array(0)],
    ['header without cookie', 'truncated', rawPacket({ options: [] }).subarray(0, 239)],
    ['op 3', 'bad-op', rawPacket({ op: 3, options: [END] })],
    ['Ethernet with hlen 7', 'bad-hlen', rawPacket({ hlen: 7, options: [END] })],
    ['hlen 17', 'bad-hlen', rawPacket({ htype: 6, hlen: 17, options: [END] })],
    ['RFC 1048 cookie misspelt', 'bad-cookie', rawPacket({ cookie: [99, 130, 83, 98], options: [END] })],
    ['option data past the end', 'option-overrun', rawPacket({ options: [53, 1, 1, 12, 5, 0x61] })],
    ['option code as the last byte', 'option-overrun', rawPacket({ options: [53, 1, 1, 12] })],
    ['no END', 'missing-end', rawPacket({ options: [53, 1, 1] })],
    ['no options at all', 'missing-end', rawPacket({ options: [] })],
    ['message type of 2 bytes', 'bad-option', rawPacket({ options: [53, 2, 1, 1, END] })],
    ['message type 0', 'bad-option', rawPacket({ options: [53, 1, 0, END] })],
    ['message type 200', 'bad-option', rawPacket({ options: [53, 1, 200, END] })],
    ['3-byte subnet mask', 'bad-option', rawPacket({ options: [1, 3, 255, 255, 255, END] })],
    ['router list of 6 bytes', 'bad-option', rawPacket({ options: [3, 6, 10, 0, 0, 1, 10, 0, END] })],
    ['empty host name', 'bad-option', rawPacket({ options: [12, 0, END] })],
    ['one-byte client id', 'bad-option', rawPacket({ options: [61, 1, 1, END] })],
    ['odd-length client arch', 'bad-option', rawPacket({ options: [93, 3, 0, 7, 0, END] })],
    ['2-byte client NDI', 'bad-option', rawPacket({ options: [94, 2, 1, 2, END] })],
    ['5-byte lease time', 'bad-option', rawPacket({ options: [51, 5, 0, 0, 0, 0, 1, END] })],
    ['overload of 2 bytes', 'bad-overload', rawPacket({ options: [52, 2, 1, 1, END] })],
    ['overload value 4', 'bad-overload', rawPacket({ options: [52, 1, 4, END] })],
    ['overloaded file without END', 'bad-overload', rawPacket({ options: [52, 1, 1, END], file: [12, 1, 0x61] })],
    ['overloaded sname overrun', 'bad-overload', rawPacket({ options: [52, 1, 2, END], sname: [...new Array(62).fill(0), 12, 5] })],
    ['overload inside file', 'bad-overload', rawPacket({ options: [52, 1, 1, END], file: [52, 1, 2, END] })],
    ['malformed option inside file', 'bad-option', rawPacket({ options: [52, 1, 1, END], file: [53, 2, 1, 1, END] })],
  ];

  it.each(cases)('%s → %s', (_what, kind, bytes) => {
    expect(decodeKind(bytes)).toBe(kind);
  });

  it('every error kind is exercised above', () => {
    expect(new Set(cases.map(([, kind]) => kind))).toEqual(new Set(DHCP_DECODE_ERROR_KINDS));
  });

  it('names the offending option', () => {
    const result = decodeDhcp(rawPacket({ options: [53, 1, 1, 93, 1, 0, END] }));
    expect(result.ok ? undefined : result.error).toMatchObject({ kind: 'bad-option', option: 93 });
  });
});

describe('decodeDhcp tolerates what real clients and the RFCs allow', () => {
  it('ignores whatever follows END and accepts packets under 300 bytes', () => {
    expect(decodeOk(rawPacket({ options: [53, 1, 1, END, 0xde, 0xad, 12, 200] })).options).toEqual({ messageType: 1 });
    expect(decodeOk(rawPacket({ options: [END] })).options).toEqual({});
  });

  it('skips pad options anywhere', () => {
    expect(decodeOk(rawPacket({ options: [0, 0, 53, 1, 3, 0, 50, 4, 192, 0, 2, 7, 0, END] })).options).toEqual({ messageType: 3, requestedIp: '192.0.2.7' });
  });

  it('concatenates repeated options in order (RFC 3396), even when not adjacent', () => {
    const packet = decodeOk(rawPacket({ options: [12, 3, ...ascii('liv'), 53, 1, 1, 12, 3, ...ascii('ery'), 200, 1, 9, 200, 1, 8, END] }));
    expect(packet.options.hostname).toBe('livery');
    expect(packet.unknownOptions).toEqual([{ code: 200, data: Uint8Array.of(9, 8) }]);
  });

  it('keeps unknown options, zero-length ones included, in order of appearance', () => {
    const packet = decodeOk(rawPacket({ options: [224, 0, 53, 1, 1, 150, 4, 192, 0, 2, 1, END] }));
    expect(packet.unknownOptions).toEqual([
      { code: 224, data: new Uint8Array(0) },
      { code: 150, data: Uint8Array.of(192, 0, 2, 1) },
    ]);
  });

  it('reads options from file, then sname, when option 52 says so; those fields are then null', () => {
    const packet = decodeOk(
      rawPacket({
        options: [53, 1, 2, 52, 1, 3, 43, 2, 6, 8, END],
        file: [67, 4, ...ascii('boot'), 43, 1, 255, END],
        sname: [12, 3, ...ascii('srv'), 43, 1, 0x42, END],
      }),
    );
    expect(packet.file).toBeNull();
    expect(packet.sname).toBeNull();
    // Option 43 comes in three pieces: options field, then file, then sname (RFC 3396 order).
    expect(packet.options).toEqual({ messageType: 2, bootfileName: 'boot', hostname: 'srv', vendorSpecific: Uint8Array.of(6, 8, 255, 0x42) });
  });

  it('keeps sname as a string when only file is overloaded', () => {
    const packet = decodeOk(rawPacket({ options: [52, 1, 1, END], file: [END], sname: ascii('tftp.example') }));
    expect([packet.sname, packet.file]).toEqual(['tftp.example', null]);
  });

  it('reads sname/file up to the first NUL, or the whole field when there is none', () => {
    const packet = decodeOk(rawPacket({ options: [END], sname: ascii('s'.repeat(64)), file: [...ascii('pxelinux.0'), 0, ...ascii('junk')] }));
    expect(packet.sname).toBe('s'.repeat(64));
    expect(packet.file).toBe('pxelinux.0');
  });

  it('reads the broadcast bit and ignores the reserved flag bits', () => {
    const bytes = rawPacket({ options: [END] });
    bytes.set([0xff, 0xff], 10);
    expect(decodeOk(bytes).broadcast).toBe(true);
    bytes.set([0x7f, 0xff], 10);
    expect(decodeOk(bytes).broadcast).toBe(false);
  });

  it('gives mac only for Ethernet and keeps every chaddr byte', () => {
    const bytes = rawPacket({ htype: 32, hlen: 0, options: [END] }); // InfiniBand leaves chaddr to option 61
    bytes.set(new Uint8Array(16).fill(0xab), 28);
    const packet = decodeOk(bytes);
    expect(packet.mac).toBeNull();
    expect(packet.chaddr).toEqual(new Uint8Array(16).fill(0xab));
  });

  it('returns owned bytes that do not alias the input buffer', () => {
    const bytes = rawPacket({ options: [61, 3, 1, 2, 3, END] });
    const packet = decodeOk(bytes);
    bytes.fill(0);
    expect(packet.options.clientId).toEqual(Uint8Array.of(1, 2, 3));
    expect(packet.chaddr).toEqual(macToChaddr(CLIENT_MAC));
  });
});

// --- robustness ------------------------------------------------------------------------------

/** Real and generated packets, truncated, bit-flipped, overwritten, extended, or replaced by noise. */
function mutatedPacketArb(): fc.Arbitrary<Uint8Array> {
  const seeds = fc.oneof(
    fc.constantFrom(...['dhclient-discover', 'udhcpc-discover', 'ipxe-bios-discover', 'ipxe-efi-discover', 'ovmf-pxe-discover'].map(fixture)),
    plainPacketArb.map((p) => encodeDhcp(p)),
    overloadedPacketArb.map(encodeIfFits).filter((b): b is Buffer => b !== undefined),
  );
  const mutation = fc.oneof(
    fc.nat().map((n) => (b: Uint8Array) => b.subarray(0, n % (b.length + 1))),
    fc.integer({ min: 1, max: 64 }).map((n) => (b: Uint8Array) => b.subarray(0, b.length - n)),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }).map((flips) => (b: Uint8Array) => {
      const out = Uint8Array.from(b);
      for (const [at, bit] of flips) out[at % out.length]! ^= 1 << bit;
      return out;
    }),
    fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 32 })).map(([at, noise]) => (b: Uint8Array) => {
      const out = Uint8Array.from(b);
      out.set(noise.subarray(0, Math.max(0, out.length - (at % out.length))), at % out.length);
      return out;
    }),
    fc.uint8Array({ maxLength: 64 }).map((tail) => (b: Uint8Array) => Uint8Array.from([...b, ...tail])),
    // A valid header and cookie followed by random option bytes reaches the option walker.
    fc.uint8Array({ maxLength: 400 }).map((options) => (b: Uint8Array) => Uint8Array.from([...b.subarray(0, 240), ...options])),
  );
  return fc.oneof(
    { arbitrary: fc.tuple(seeds, mutation).map(([seed, mutate]) => mutate(seed)), weight: 9 },
    { arbitrary: fc.uint8Array({ maxLength: 700 }), weight: 1 },
  );
}

describe('decodeDhcp is total', () => {
  it('never throws on mutated or random input and only reports known error kinds', () => {
    const kinds = new Set<string>(DHCP_DECODE_ERROR_KINDS);
    fc.assert(
      fc.property(mutatedPacketArb(), (bytes) => {
        const result = decodeDhcp(bytes);
        if (!result.ok) expect(kinds).toContain(result.error.kind);
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts a Buffer view into a larger allocation', () => {
    const backing = Buffer.alloc(1000, 0xee);
    const packet = fixture('udhcpc-discover');
    packet.copy(backing, 100);
    expect(decodeOk(backing.subarray(100, 100 + packet.length))).toEqual(decodeOk(packet));
  });
});

// --- option helpers ---------------------------------------------------------------------------

describe('option helpers', () => {
  const withOptions = (options: DhcpOptions) => ({ options });

  it('userClasses: RFC 3004 lists, bare strings, and nothing', () => {
    expect(userClasses(withOptions({ userClass: Uint8Array.of(4, ...ascii('gold'), 2, ...ascii('hw')) }))).toEqual(['gold', 'hw']);
    expect(userClasses(withOptions({ userClass: Uint8Array.from(ascii('iPXE')) }))).toEqual(['iPXE']);
    expect(userClasses(withOptions({ userClass: Uint8Array.of(0, ...ascii('x')) }))).toEqual(['\0x']);
    expect(userClasses(withOptions({}))).toEqual([]);
  });

  it('relayAgentInfo: circuit id and remote id of option 82', () => {
    const raw = Uint8Array.of(1, 4, ...ascii('eth7'), 2, 6, 0x52, 0x54, 0, 1, 2, 3, 9, 0);
    const info = relayAgentInfo(withOptions({ relayAgentInfo: raw }));
    expect(info?.circuitId).toEqual(Uint8Array.from(ascii('eth7')));
    expect(info?.remoteId).toEqual(Uint8Array.of(0x52, 0x54, 0, 1, 2, 3));
    expect(info?.subOptions.map((s) => s.code)).toEqual([1, 2, 9]);
    expect(relayAgentInfo(withOptions({ relayAgentInfo: Uint8Array.of(1, 5, 0x61) }))).toBeUndefined();
    expect(relayAgentInfo(withOptions({}))).toBeUndefined();
  });

  it('option 82 is echoed byte for byte through decode and encode', () => {
    const raw = Uint8Array.of(1, 4, ...ascii('eth7'), 2, 2, 0xca, 0xfe);
    const request = decodeOk(rawPacket({ options: [53, 1, 1, 82, raw.length, ...raw, END] }));
    const options = { messageType: DhcpMessageType.OFFER, relayAgentInfo: request.options.relayAgentInfo };
    const reply = encodeDhcp({ op: BootOp.REPLY, xid: request.xid, chaddr: request.chaddr, options });
    expect(reply.includes(Buffer.from([82, raw.length, ...raw]))).toBe(true);
  });

  it('clientUuid: only the RFC 4578 shape (type 0 + 16 bytes)', () => {
    const guid = [0x65, 0x76, 0x69, 0x6c, 0x79, 0x72, 0x00, 0x40, 0x80, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab];
    expect(clientUuid(withOptions({ clientUuid: Uint8Array.of(0, ...guid) }))).toBe(CLIENT_UUID);
    expect(clientUuid(withOptions({ clientUuid: Uint8Array.of(1, ...guid) }))).toBeUndefined();
    expect(clientUuid(withOptions({ clientUuid: Uint8Array.from(guid) }))).toBeUndefined();
  });

  it('ipxeInfo: unnamed sub-options are kept, malformed encapsulation is undefined', () => {
    const info = ipxeInfo(withOptions({ ipxe: Uint8Array.of(0x13, 1, 1, 0xb1, 2, 1, 2, END) }));
    expect(info).toEqual({ features: ['http'], subOptions: [{ code: 0x13, data: Uint8Array.of(1) }, { code: 0xb1, data: Uint8Array.of(1, 2) }] });
    expect(ipxeInfo(withOptions({ ipxe: Uint8Array.of(0x13, 4, 1) }))).toBeUndefined();
  });

  it('messageTypeName, formatMac and macToChaddr', () => {
    expect(messageTypeName(DhcpMessageType.ACK)).toBe('ACK');
    expect(messageTypeName(DhcpMessageType.INFORM)).toBe('INFORM');
    expect(formatMac(macToChaddr('52-54-00-AB-CD-EF').subarray(0, 6))).toBe('52:54:00:ab:cd:ef');
    expect(() => macToChaddr('52:54:00:ab:cd')).toThrow(RangeError);
  });
});

// --- PXE vendor options (option 43) -----------------------------------------------------------

describe('PXE vendor options', () => {
  it('encodes the sub-options byte for byte as the PXE 2.1 specification lays them out', () => {
    const bytes = encodePxeVendorOptions({
      discoveryControl: PxeDiscoveryControl.BOOTFILE_DIRECT,
      bootServers: [{ type: 0x8000, addresses: ['192.0.2.1'] }],
      bootMenu: [{ type: 0x8000, description: 'livery' }],
      menuPrompt: { timeout: 5, prompt: 'Boot' },
      bootItem: { type: 0x8000, layer: 0 },
    });
    expect([...bytes]).toEqual([
      6, 1, 8,
      8, 7, 0x80, 0x00, 1, 192, 0, 2, 1,
      9, 9, 0x80, 0x00, 6, ...ascii('livery'),
      10, 5, 5, ...ascii('Boot'),
      71, 4, 0x80, 0x00, 0, 0,
      END,
    ]);
  });

  const pxeArb: fc.Arbitrary<PxeVendorOptions> = fc
    .record(
      {
        discoveryControl: byteArb,
        bootServers: fc.array(fc.record({ type: u16Arb, addresses: fc.array(ipArb, { maxLength: 5 }) }), { minLength: 1, maxLength: 4 }),
        bootMenu: fc.array(fc.record({ type: u16Arb, description: fc.string({ maxLength: 20 }) }), { minLength: 1, maxLength: 4 }),
        menuPrompt: fc.record({ timeout: byteArb, prompt: fc.string({ maxLength: 30 }) }),
        bootItem: fc.record({ type: u16Arb, layer: u16Arb }),
      },
      { requiredKeys: [] },
    )
    .chain((known) =>
      fc
        .array(fc.record({ code: fc.constantFrom(1, 2, 3, 4, 5, 7, 11, 128, 200), data: fc.uint8Array({ maxLength: 16 }) }), { maxLength: 3 })
        .map((unknown) => ({ ...known, unknown })),
    );

  it('decode(encode(o)) equals o, also carried inside a DHCP packet', () => {
    fc.assert(
      fc.property(pxeArb, (pxe) => {
        const vendorSpecific = encodePxeVendorOptions(pxe);
        expect(decodePxeVendorOptions(vendorSpecific)).toEqual({ ok: true, options: pxe });
        const packet = decodeOk(encodeDhcp({ op: BootOp.REPLY, xid: 1, chaddr: macToChaddr(CLIENT_MAC), options: { vendorSpecific } }));
        expect(decodePxeVendorOptions(packet.options.vendorSpecific!)).toEqual({ ok: true, options: pxe });
      }),
      { numRuns: 200 },
    );
  });

  it('tolerates pads and a missing END; rejects overruns, malformed and repeated known sub-options', () => {
    expect(decodePxeVendorOptions(Uint8Array.of(0, 6, 1, 3))).toEqual({ ok: true, options: { discoveryControl: 3, unknown: [] } });
    const kindOf = (bytes: number[]) => {
      const result = decodePxeVendorOptions(Uint8Array.from(bytes));
      return result.ok ? 'ok' : result.error.kind;
    };
    expect(kindOf([6, 2, 3])).toBe('option-overrun');
    expect(kindOf([71, 3, 0, 0, 0, END])).toBe('bad-option');
    expect(kindOf([6, 1, 3, 6, 1, 4, END])).toBe('bad-option');
    expect(kindOf([8, 7, 0x80, 0, 2, 192, 0, 2, 1, END])).toBe('bad-option'); // says 2 addresses, carries 1
    expect(kindOf([9, 4, 0x80, 0, 5, 0x61, END])).toBe('bad-option');
  });

  it('refuses sub-options it cannot encode', () => {
    expect(() => encodePxeVendorOptions({ bootMenu: [] })).toThrow(RangeError);
    expect(() => encodePxeVendorOptions({ bootMenu: [{ type: 1, description: 'd'.repeat(300) }] })).toThrow(RangeError);
    expect(() => encodePxeVendorOptions({ unknown: [{ code: 71, data: new Uint8Array(4) }] })).toThrow(RangeError);
    expect(() => encodePxeVendorOptions({ bootItem: { type: 0x10000, layer: 0 } })).toThrow(RangeError);
  });
});

// --- an independent implementation -----------------------------------------------------------

/** The npm `dhcp` package's wire parser and formatter: a second opinion written by someone else. */
interface NodeDhcpProtocol {
  parse(buf: Buffer): { op: number; xid: number; flags: number; yiaddr: string; siaddr: string; chaddr: string; file: string; options: Record<number, unknown> };
  format(data: object): { _data: Buffer; _w: number };
}
const nodeDhcp = createRequire(import.meta.url)('dhcp/lib/protocol.js') as NodeDhcpProtocol;

describe('agreement with the npm dhcp package', () => {
  it('parses our OFFER to the same fields', () => {
    const bytes = encodeDhcp({
      op: BootOp.REPLY,
      xid: 0xcafe0001,
      broadcast: true,
      chaddr: macToChaddr(CLIENT_MAC),
      yiaddr: '192.0.2.50',
      siaddr: '192.0.2.1',
      file: 'ipxe.efi',
      options: {
        messageType: DhcpMessageType.OFFER,
        serverId: '192.0.2.1',
        leaseTime: 86400,
        subnetMask: '255.255.255.0',
        routers: ['192.0.2.1'],
        dnsServers: ['192.0.2.2', '192.0.2.3'],
        hostname: 'node-17',
        vendorClassId: 'PXEClient',
        bootfileName: 'ipxe.efi',
      },
    });
    const theirs = nodeDhcp.parse(bytes);
    expect(theirs).toMatchObject({ op: 2, xid: 0xcafe0001, flags: 0x8000, yiaddr: '192.0.2.50', siaddr: '192.0.2.1', file: 'ipxe.efi' });
    expect(theirs.chaddr).toBe(CLIENT_MAC.toUpperCase().replaceAll(':', '-'));
    expect(theirs.options).toEqual({
      1: '255.255.255.0',
      3: ['192.0.2.1'],
      6: ['192.0.2.2', '192.0.2.3'],
      12: 'node-17',
      51: 86400,
      53: 2,
      54: '192.0.2.1',
      60: 'PXEClient',
      67: 'ipxe.efi',
    });
  });

  it('decodes its REQUEST to the same fields', () => {
    const sb = nodeDhcp.format({
      op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x1234, secs: 3, flags: 0,
      ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
      chaddr: CLIENT_MAC, sname: '', file: '',
      options: { 53: 3, 50: '192.0.2.50', 54: '192.0.2.1', 55: [1, 3, 6, 67], 57: 1500, 12: 'node-17' },
    });
    const packet = decodeOk(sb._data.subarray(0, sb._w));
    expect(packet).toMatchObject({ op: 1, xid: 0x1234, secs: 3, mac: CLIENT_MAC });
    expect(packet.options).toEqual({
      messageType: DhcpMessageType.REQUEST,
      requestedIp: '192.0.2.50',
      serverId: '192.0.2.1',
      parameterRequestList: [1, 3, 6, 67],
      maxMessageSize: 1500,
      hostname: 'node-17',
    });
  });
});
