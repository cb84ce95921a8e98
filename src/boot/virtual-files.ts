import type { Cmdb } from '../cmdb/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { normalizeMac } from '../net/mac.js';
import { writeBootStep } from '../cmdb/boot-steps.js';
import { decide } from './decide.js';
import type { Firmware } from './facts.js';
import { bootStep } from './record.js';
import { GRUB_TEMPLATE, templateData } from './render.js';
import type { TemplateStore } from './templates.js';

/** Per-machine files that loaders other than iPXE look for on the TFTP server. */
const VIRTUAL: { pattern: RegExp; template: string; firmware: Firmware }[] = [
  // pxelinux: pxelinux.cfg/01-aa-bb-cc-dd-ee-ff (ARP type 1, then the MAC).
  { pattern: /^pxelinux\.cfg\/01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i, template: 'pxelinux/default.cfg', firmware: 'bios-pxe' },
  // GRUB's network boot: grub.cfg-01-<mac> (in its prefix folder, often grub/).
  { pattern: /^(?:grub\/)?grub\.cfg-01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i, template: GRUB_TEMPLATE, firmware: 'grub' },
];

/**
 * Where Debian's signed network GRUB (grubnetx64, built with prefix /grub) looks first, over
 * TFTP or HTTP, whichever brought it: served from grub/entry.cfg, which hands over to the
 * machine's own /boot/<mac>.grub.
 */
export const GRUB_ENTRY_PATH = 'grub/x86_64-efi/grub.cfg';

/** The GRUB entry config: the same for every machine (GRUB itself fills in the MAC). */
export function grubEntryConfig(config: Config, templates: TemplateStore): string {
  const server = new URL(config.http.publicUrl);
  return templates.render('grub/entry.cfg', { serverHost: server.hostname, serverPort: server.port || '80' });
}

/**
 * Renders the TFTP virtual file for `path`, or null when the path is not one (the TFTP
 * server then looks on disk). autoexec.ipxe is what iPXE loaded from TFTP tries first: it
 * chains to the HTTP script.
 */
export function tftpVirtualFile(path: string, ctx: { cmdb: Cmdb; config: Config; templates: TemplateStore; logger?: Logger }): Buffer | null {
  if (path === 'autoexec.ipxe') return Buffer.from(ctx.templates.render('ipxe/chain.ipxe', { server: ctx.config.http.publicUrl }));
  if (path === GRUB_ENTRY_PATH) return Buffer.from(grubEntryConfig(ctx.config, ctx.templates));
  for (const v of VIRTUAL) {
    const m = v.pattern.exec(path);
    const mac = m ? normalizeMac(m[1]!) : null;
    if (!mac) continue;
    const plan = decide({ mac, firmware: v.firmware, arch: 'x86_64', archCode: null, subnetHint: null, door: 'tftp' }, ctx);
    const file = Buffer.from(ctx.templates.render(v.template, templateData(plan, ctx.config)));
    // The served plan is what a phone-home is checked against. Only for machines the CMDB
    // knows: made-up MACs over TFTP register nothing and leave no rows.
    if (plan.machine) {
      ctx.cmdb
        .soon(() => writeBootStep(ctx.cmdb, { ...bootStep(plan, 'boot-config', { template: v.template }), discover: false }))
        .catch((err: unknown) => ctx.logger?.error({ err, mac, template: v.template }, 'boot-config event not recorded'));
    }
    return file;
  }
  return null;
}
