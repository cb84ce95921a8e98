import type { Config } from '../config/index.js';
import { pxelinuxMacName } from '../net/mac.js';
import type { BootPlan } from './plan.js';
import { QUOTE } from './quoting.js';
import { grubConfigPath } from './secure-boot.js';
import type { TemplateStore } from './templates.js';

/** How long a machine with nothing to boot waits before asking again. */
export const RETRY_SECONDS = 30;

/** The variables every template sees (documented in README "Templates"). */
export function templateData(plan: BootPlan, config: Config) {
  const server = serverOf(config.http.publicUrl);
  const m = plan.machine;
  const initrd = plan.image?.artifacts.find((a) => a.role === 'initrd');
  return {
    mac: plan.facts.mac,
    bootif: pxelinuxMacName(plan.facts.mac),
    hostname: m?.hostname ?? null,
    name: m?.hostname ?? plan.facts.mac,
    server: config.http.publicUrl,
    serverHost: server.host,
    serverPort: server.port,
    scriptUrl: plan.scriptUrl,
    grubPath: pathOf(plan.grubUrl, server),
    chain: plan.chain.chain,
    metadataUrl: `${config.http.publicUrl}/v1/metadata/${plan.facts.mac}`,
    // cloud-init runs its first-boot modules again when this changes: a new image is a new instance.
    instanceId: plan.image ? `${plan.facts.mac}-${plan.image.id}` : plan.facts.mac,
    action: plan.action,
    // GRUB templates have no string comparison: the one fork they need, as a flag.
    retry: plan.action === 'wait',
    reason: plan.why,
    reasons: plan.reasons,
    retrySeconds: RETRY_SECONDS,
    console: config.boot.console,
    firmware: plan.facts.firmware,
    arch: plan.facts.arch,
    machine: m ? { id: m.id, hostname: m.hostname, ip: m.ip, site: m.site, state: m.state } : null,
    labels: m?.labels ?? {},
    vars: m?.vars ?? {},
    subnet: plan.subnet ? { name: plan.subnet.name, cidr: plan.subnet.cidr, gateway: plan.subnet.gateway, dns: plan.subnet.dns, domain: plan.subnet.domain } : null,
    image: plan.image ? { id: plan.image.id, name: plan.image.name, version: plan.image.version, channel: plan.image.channel } : null,
    kernelUrl: plan.artifacts?.kernel ?? null,
    // GRUB reads files from its $root (the server it came from): give templates the path part too.
    kernelPath: plan.artifacts ? pathOf(plan.artifacts.kernel, server) : null,
    initrdPath: plan.artifacts ? pathOf(plan.artifacts.initrd, server) : null,
    initrdUrl: plan.artifacts?.initrd ?? null,
    initrdName: initrd?.name ?? null,
    rootfsUrl: plan.artifacts?.rootfs ?? null,
    rootfsSha256: plan.artifacts?.rootfsSha256 ?? null,
    cmdline: plan.cmdline,
    // initrd= names the initrd in iPXE's EFI file system; GRUB hands the kernel its initrd itself.
    grubCmdline: plan.cmdline.replace(/^initrd=\S+ /, ''),
  };
}

/** The per-machine script of each loader language: its template, and what to serve if that cannot render. */
const SCRIPTS = {
  ipxe: {
    template: (plan: BootPlan) => plan.template,
    fallback: (plan: BootPlan, echoed: string) => `#!ipxe\necho ${echoed}\nsleep ${RETRY_SECONDS}\nchain --replace ${plan.scriptUrl}\n`,
  },
  grub: {
    template: () => GRUB_TEMPLATE,
    fallback: (plan: BootPlan, echoed: string, config: Config) => `echo ${echoed}\nsleep ${RETRY_SECONDS}\nconfigfile ${pathOf(plan.grubUrl, serverOf(config.http.publicUrl))}\n`,
  },
} as const;

/** The template of the per-machine config the signed GRUB loads (grub/grub.cfg-01-<mac>, over TFTP or HTTP). */
export const GRUB_TEMPLATE = 'grub/grub.cfg';

/**
 * Renders the plan's iPXE script or GRUB config. If the template is broken (and never had a
 * good version) the machine still gets a script that says why on its console and retries,
 * never an error page.
 */
export function renderScript(language: keyof typeof SCRIPTS, plan: BootPlan, config: Config, templates: TemplateStore): { script: string; error: string | null } {
  const { template, fallback } = SCRIPTS[language];
  try {
    return { script: templates.render(template(plan), templateData(plan, config)), error: null };
  } catch (err) {
    const message = (err as Error).message.replace(/[\r\n]/g, ' ');
    // The message may quote the value that could not be written: it is echoed as data too.
    const echoed = QUOTE[language](`livery: cannot render ${template(plan)}: ${message.replaceAll('${', '$ {')}`);
    return { script: fallback(plan, echoed, config), error: message };
  }
}

export const renderIpxe = (plan: BootPlan, config: Config, templates: TemplateStore) => renderScript('ipxe', plan, config, templates);

interface Server {
  url: string;
  host: string;
  port: string;
  /** publicUrl is exactly origin + path (no query, nothing normalised away): URLs under it need no parsing. */
  path: string | null;
}

let lastServer: Server | null = null;

/** http.publicUrl's parts, parsed once (every script reads them; parsing a URL costs more than the render). */
function serverOf(publicUrl: string): Server {
  if (lastServer?.url === publicUrl) return lastServer;
  const u = new URL(publicUrl);
  const path = u.pathname === '/' ? '' : u.pathname;
  lastServer = { url: publicUrl, host: u.hostname, port: u.port || (u.protocol === 'https:' ? '443' : '80'), path: u.origin + path === publicUrl ? path : null };
  return lastServer;
}

/** The path and query of a URL; one livery built under publicUrl (its own words are URL-safe) is cut, not parsed. */
function pathOf(url: string, server: Server): string {
  if (server.path !== null && url.startsWith(`${server.url}/`)) return server.path + url.slice(server.url.length);
  const u = new URL(url);
  return u.pathname + u.search;
}

/**
 * Template data for a made-up machine with every field filled, used to check templates when
 * they are loaded.
 */
export function sampleTemplateData(config: Config) {
  const mac = '02:00:00:00:00:01';
  const now = new Date(0).toISOString();
  const plan: BootPlan = {
    facts: { mac, firmware: 'ipxe', arch: 'x86_64', archCode: 7, subnetHint: null, door: 'explain' },
    chain: { chain: 'ipxe', secureBoot: 'off', source: 'sample', reason: 'sample' },
    machine: {
      id: 1, macs: [mac], hostname: 'sample', uuid: null, site: 'site', labels: {}, state: 'registered',
      image: { name: 'sample', channel: 'stable', id: null }, kernelArgs: '', vars: {}, ip: '192.0.2.10', subnet: null, secureBoot: null,
      createdAt: now, updatedAt: now, lastSeenAt: null, facts: null,
    },
    subnet: {
      id: 1, name: 'sample', cidr: '192.0.2.0/24', gateway: '192.0.2.1', dns: ['192.0.2.1'], domain: 'example.org', pools: [],
      leaseSeconds: 3600, policy: 'discover', discoverAction: 'retry', defaultImage: { name: null, channel: null }, secureBoot: null, createdAt: now, updatedAt: now,
    },
    policy: 'known',
    action: 'boot',
    discover: false,
    next: { kind: 'script', url: `${config.http.publicUrl}/boot/${mac}.ipxe` },
    scriptUrl: `${config.http.publicUrl}/boot/${mac}.ipxe`,
    grubUrl: `${config.http.publicUrl}/${grubConfigPath(mac)}`,
    image: {
      id: '00000000-0000-4000-8000-000000000000', name: 'sample', version: '1', os: 'debian-bookworm', arch: 'amd64', createdAt: now,
      publishedAt: now, kernelArgs: '', recipe: '', channel: 'stable', manifest: {} as never,
      artifacts: [
        { name: 'vmlinuz', role: 'kernel', size: 1, sha256: '0'.repeat(64) },
        { name: 'initrd.img', role: 'initrd', size: 1, sha256: '0'.repeat(64) },
      ],
    },
    artifacts: { kernel: `${config.http.publicUrl}/images/x/vmlinuz`, initrd: `${config.http.publicUrl}/images/x/initrd.img`, rootfs: null, rootfsSha256: null },
    cmdline: 'initrd=initrd.img console=ttyS0',
    template: 'ipxe/boot.ipxe',
    reasons: ['sample'],
    why: 'sample',
  };
  return templateData(plan, config);
}
