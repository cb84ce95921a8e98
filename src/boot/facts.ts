/**
 * What a client told us about itself, whichever door it came through. DHCP fills this from
 * options 93/77/175/60 and giaddr; TFTP and HTTP from the path and source address.
 */
export type Firmware =
  /** A NIC's PXE ROM in legacy BIOS: needs a TFTP loader (undionly.kpxe). */
  | 'bios-pxe'
  /** UEFI's own PXE client: needs an EFI loader over TFTP (snponly.efi). */
  | 'uefi-pxe'
  /** UEFI HTTP Boot: fetches the EFI loader by URL, no TFTP. */
  | 'uefi-http'
  /** Already running iPXE: give it the HTTP boot script (this breaks the chainload loop). */
  | 'ipxe'
  /** Already running Debian's signed network GRUB (the Secure Boot chain): give it its grub.cfg. */
  | 'grub';

export const FIRMWARES: readonly Firmware[] = ['bios-pxe', 'uefi-pxe', 'uefi-http', 'ipxe', 'grub'];

export type CpuArch = 'x86_64' | 'arm64' | 'i386';

export interface ClientFacts {
  mac: string;
  firmware: Firmware;
  arch: CpuArch;
  /** The raw option 93 value, when the client sent one. */
  archCode: number | null;
  /** An address that places the client in a subnet: giaddr for relayed DHCP, else its own. */
  subnetHint: number | null;
  door: 'dhcp' | 'tftp' | 'http' | 'explain';
}

/** RFC 4578 / IANA processor architecture types → CPU and whether it is UEFI HTTP Boot. */
const ARCH: Record<number, { arch: CpuArch; uefi: boolean; http: boolean }> = {
  0: { arch: 'x86_64', uefi: false, http: false },
  6: { arch: 'i386', uefi: true, http: false },
  7: { arch: 'x86_64', uefi: true, http: false },
  9: { arch: 'x86_64', uefi: true, http: false },
  10: { arch: 'arm64', uefi: true, http: false },
  11: { arch: 'arm64', uefi: true, http: false },
  15: { arch: 'i386', uefi: true, http: true },
  16: { arch: 'x86_64', uefi: true, http: true },
  18: { arch: 'arm64', uefi: true, http: true },
  19: { arch: 'arm64', uefi: true, http: true },
};

export function archName(code: number | null): string {
  if (code === null) return 'unknown';
  const a = ARCH[code];
  return a ? `${a.arch}${a.uefi ? (a.http ? '-uefi-http' : '-uefi') : '-bios'}` : `arch-${code}`;
}

/**
 * Classifies a DHCP client. iPXE announces itself with user class "iPXE" (option 77) and
 * its own option 175; that check comes first because iPXE also repeats the ROM's option 93.
 */
export function classifyDhcpClient(opts: { archCode: number | null; userClasses: string[]; hasIpxeOption: boolean; vendorClass: string | null }): {
  firmware: Firmware;
  arch: CpuArch;
} {
  const a = opts.archCode !== null ? ARCH[opts.archCode] : undefined;
  const arch = a?.arch ?? 'x86_64';
  if (opts.userClasses.includes('iPXE') || opts.hasIpxeOption) return { firmware: 'ipxe', arch };
  if (a?.http || opts.vendorClass?.startsWith('HTTPClient')) return { firmware: 'uefi-http', arch };
  if (a?.uefi) return { firmware: 'uefi-pxe', arch };
  return { firmware: 'bios-pxe', arch };
}
