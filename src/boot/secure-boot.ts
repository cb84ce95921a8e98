import type { Machine, SecureBoot, Subnet } from '../cmdb/types.js';
import type { Config } from '../config/index.js';
import { pxelinuxMacName } from '../net/mac.js';
import type { ClientFacts } from './facts.js';

/**
 * The loader chain a client starts: iPXE (unsigned), or Debian's signed shim -> network GRUB
 * -> kernel, which firmware that enforces Secure Boot accepts.
 */
export type LoaderChain = 'ipxe' | 'shim';

export interface ChainChoice {
  chain: LoaderChain;
  /** The setting that applied and where it came from (machine, subnet or config). */
  secureBoot: SecureBoot;
  source: string;
  reason: string;
}

/**
 * DHCP cannot tell whether Secure Boot is on, so the setting decides, the most specific one
 * first: the machine's, its subnet's, then boot.secureBoot. Only x86-64 UEFI clients can take
 * the signed chain (Debian signs shimx64 and grubnetx64 only); a client already running iPXE
 * keeps it (it got past the firmware, so nothing there enforces signatures), and one running
 * the signed GRUB is on the signed chain whatever the setting says now.
 */
export function chooseChain(facts: ClientFacts, machine: Machine | null, subnet: Subnet | null, config: Config): ChainChoice {
  const [secureBoot, source] =
    machine?.secureBoot != null
      ? [machine.secureBoot, `machine ${machine.hostname ?? `#${machine.id}`}`]
      : subnet?.secureBoot != null
        ? [subnet.secureBoot, `subnet ${subnet.name}`]
        : [config.boot.secureBoot, 'config boot.secureBoot'];
  const setting = `secureBoot ${secureBoot} (${source})`;
  const ipxe = (why: string): ChainChoice => ({ chain: 'ipxe', secureBoot, source, reason: `${setting}: iPXE, ${why}` });
  if (facts.firmware === 'grub') return { chain: 'shim', secureBoot, source, reason: `${setting}: the client runs the signed GRUB` };
  if (secureBoot === 'off') return ipxe('no signed chain wanted');
  if (facts.firmware === 'ipxe') return ipxe('the client already runs iPXE');
  if (facts.firmware === 'bios-pxe') return ipxe('a BIOS client has no Secure Boot');
  if (facts.arch !== 'x86_64') return ipxe(`no signed chain for ${facts.arch} (Debian signs shim and GRUB for x86-64)`);
  return { chain: 'shim', secureBoot, source, reason: `${setting}: the signed chain shim -> GRUB -> kernel` };
}

/**
 * Where the signed GRUB finds a machine's config, on the TFTP or HTTP server it came from:
 * beside the entry config in its prefix folder, named as GRUB names per-MAC configs.
 */
export const grubConfigPath = (mac: string) => `grub/grub.cfg-${pxelinuxMacName(mac)}`;
