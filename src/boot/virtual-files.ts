import type { Cmdb } from '../cmdb/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { normalizeMac } from '../net/mac.js';
import { writeBootStep } from '../cmdb/boot-steps.js';
import { decide } from './decide.js';
import type { Firmware } from './facts.js';
import { bootStep } from './record.js';
import { GRUB_TEMPLATE, renderScript, templateData } from './render.js';
import type { TemplateStore } from './templates.js';

const MAC = '([0-9a-f]{2}(?:[-:][0-9a-f]{2}){5})';

/** Per-machine files that loaders other than iPXE look for on the TFTP server. */
const VIRTUAL: { pattern: RegExp; template: string; firmware: Firmware }[] = [
  // pxelinux: pxelinux.cfg/01-aa-bb-cc-dd-ee-ff (ARP type 1, then the MAC).
  { pattern: new RegExp(`^pxelinux\\.cfg/01-${MAC}$`, 'i'), template: 'pxelinux/default.cfg', firmware: 'bios-pxe' },
  // GRUB's network boot: grub.cfg-01-<mac> in its prefix folder (grub/), with dashes as GRUB
  // names it, or colons as grub/entry.cfg asks for it ($net_default_mac).
  { pattern: new RegExp(`^(?:grub/)?grub\\.cfg-01-${MAC}$`, 'i'), template: GRUB_TEMPLATE, firmware: 'grub' },
];

/**
 * The config Debian's signed network GRUB (grubnetx64, built with prefix /grub) reads, over
 * TFTP or HTTP, whichever brought it: served from grub/entry.cfg, which hands over to the
 * machine's own grub/grub.cfg-01-<mac>. Its built-in config prefers $prefix/x86_64-efi/grub.cfg
 * when `[ -e ]` finds one, which never asks a network server, so $prefix/grub.cfg is the one read.
 */
export const GRUB_ENTRY_PATH = 'grub/grub.cfg';

/**
 * An image's artifact by its HTTP path, images/<id>/<file>, with the query (?mac=) GRUB keeps
 * in the name when it reads the same path over TFTP.
 */
const ARTIFACT = /^images\/([0-9a-f-]{36})\/([^/?]+)(?:\?.*)?$/;

export interface VirtualFileContext {
  cmdb: Cmdb;
  config: Config;
  templates: TemplateStore;
  logger?: Logger;
  /** The file on disk of an image's artifact, or null (the catalog's lookup). */
  artifactPath?: (imageId: string, file: string) => string | null;
}

/**
 * Renders the TFTP virtual file for `path` (or names the artifact file to send), or null when
 * the path is not one (the TFTP server then looks on disk). autoexec.ipxe is what iPXE loaded
 * from TFTP tries first: it chains to the HTTP script.
 */
export function tftpVirtualFile(path: string, ctx: VirtualFileContext): Buffer | { path: string } | null {
  if (path === 'autoexec.ipxe') return Buffer.from(ctx.templates.render('ipxe/chain.ipxe', { server: ctx.config.http.publicUrl }));
  if (path === GRUB_ENTRY_PATH) return Buffer.from(ctx.templates.render('grub/entry.cfg', {}));
  const artifact = ARTIFACT.exec(path);
  if (artifact) {
    const file = ctx.artifactPath?.(artifact[1]!, artifact[2]!);
    return file ? { path: file } : null;
  }
  for (const v of VIRTUAL) {
    const m = v.pattern.exec(path);
    const mac = m ? normalizeMac(m[1]!) : null;
    if (!mac) continue;
    const plan = decide({ mac, firmware: v.firmware, arch: 'x86_64', archCode: null, subnetHint: null, door: 'tftp' }, ctx);
    const file =
      v.template === GRUB_TEMPLATE ? renderScript('grub', plan, ctx.config, ctx.templates).script : ctx.templates.render(v.template, templateData(plan, ctx.config));
    // The served plan is what a phone-home is checked against. Only for machines the CMDB
    // knows: made-up MACs over TFTP register nothing and leave no rows. The step is stamped now,
    // not when the group commit runs it: the transfer of this file starts after the decision
    // and a trace orders by time.
    if (plan.machine) {
      const step = { ...bootStep(plan, 'boot-config', { template: v.template }), discover: false };
      ctx.cmdb
        .soon(() => writeBootStep(ctx.cmdb, step))
        .catch((err: unknown) => ctx.logger?.error({ err, mac, template: v.template }, 'boot-config event not recorded'));
    }
    return Buffer.from(file);
  }
  return null;
}
