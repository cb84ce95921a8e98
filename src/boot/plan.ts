import type { Image, Machine, Subnet, UnknownMacPolicy } from '../cmdb/types.js';
import type { ClientFacts } from './facts.js';
import type { ChainChoice } from './secure-boot.js';

/**
 * The one answer every door renders: DHCP as options 66/67/60/43, TFTP as virtual files,
 * HTTP as an iPXE script, `explain` as text. Plain data, so doors cannot disagree.
 */
export interface BootPlan {
  facts: ClientFacts;
  machine: Machine | null;
  subnet: Subnet | null;
  /** Which rule applied: a known machine, or the subnet's policy for unknown MACs. */
  policy: 'known' | 'retired' | UnknownMacPolicy | 'no-subnet';
  /**
   * boot: load the image; wait: retry later (unknown or imageless machine);
   * exit: fall through to the next boot device; ignore: send nothing at all.
   */
  action: 'boot' | 'wait' | 'exit' | 'ignore';
  /** The door should register this MAC as a `discovered` machine. */
  discover: boolean;
  /** The loader chain (iPXE or the signed shim -> GRUB chain) and the Secure Boot setting that chose it. */
  chain: ChainChoice;
  /** What this client fetches next. */
  next: { kind: 'tftp'; file: string } | { kind: 'http'; url: string } | { kind: 'script'; url: string } | { kind: 'none' };
  /** The per-machine iPXE script URL (what an iPXE client is told to chain). */
  scriptUrl: string;
  /** The per-machine GRUB config URL (what the signed GRUB loads). */
  grubUrl: string;
  image: (Image & { channel: string | null }) | null;
  artifacts: { kernel: string; initrd: string; rootfs: string | null; rootfsSha256: string | null } | null;
  cmdline: string;
  /** Template (relative to pxe-templates/) for the iPXE script. */
  template: string;
  /** Why, in the order the rules were applied: what `explain` prints. */
  reasons: string[];
  /** The reason that decided the action (what a machine's console shows). */
  why: string;
}
