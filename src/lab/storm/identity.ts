/**
 * Who the i-th virtual machine is. The simulator and whoever registers the machines in the
 * CMDB must agree, so both derive identities from the index here.
 */

/** Virtual machines get QEMU's OUI, 52:54:00, and the index in the low 24 bits. */
const MAX_MACHINES = 1 << 24;

export function stormMac(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_MACHINES) throw new RangeError(`machine index ${index} is not in 0..${MAX_MACHINES - 1}`);
  const low = [(index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff];
  return ['52', '54', '00', ...low.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * DHCP option 97 as PXE firmware sends it: type 0, then a 16-byte SMBIOS UUID. Derived from the
 * index so that every machine has its own, and the same one in both DHCP rounds.
 */
export function stormGuid(index: number): Uint8Array {
  const guid = new Uint8Array(17);
  guid.set([0x6c, 0x69, 0x76, 0x65, 0x72, 0x79, 0x00, 0x40, 0x80, 0x00], 1);
  new DataView(guid.buffer).setUint32(13, index);
  return guid;
}
