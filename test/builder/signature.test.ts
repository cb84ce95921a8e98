import { describe, expect, it } from 'vitest';
import { hasEfiSignature } from '../../src/builder/signature.js';

/** The builder's kernelSigned, from sbverify --list on real EFI binaries from Debian's packages. */
describe('hasEfiSignature', () => {
  it('is true for a signed EFI binary (shim, signed by Microsoft; the network GRUB, signed by Debian)', async () => {
    expect(await hasEfiSignature('/usr/lib/shim/shimx64.efi.signed')).toBe(true);
    expect(await hasEfiSignature('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed')).toBe(true);
  });

  it('is false for an unsigned EFI binary (iPXE) and for a file that is no EFI binary at all', async () => {
    expect(await hasEfiSignature('/usr/lib/ipxe/ipxe.efi')).toBe(false);
    expect(await hasEfiSignature('/usr/lib/ipxe/undionly.kpxe')).toBe(false);
  });
});
