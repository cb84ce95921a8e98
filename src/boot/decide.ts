import type { Cmdb } from '../cmdb/index.js';
import { splitUserKernelArgs } from '../cmdb/kernel-args.js';
import type { AssignmentRule } from '../cmdb/assignments.js';
import { firstMismatch } from '../cmdb/selector.js';
import type { Image, ImageSelector, Machine, Subnet } from '../cmdb/types.js';
import { nodeName, type Config } from '../config/index.js';
import { parseIpv4 } from '../net/ipv4.js';
import { pxelinuxMacName } from '../net/mac.js';
import { archName, type ClientFacts } from './facts.js';
import type { BootPlan } from './plan.js';
import { chooseChain, grubConfigPath } from './secure-boot.js';

export interface DecideContext {
  cmdb: Cmdb;
  config: Config;
  /**
   * The subnet whose block contains an address; by default a CMDB query. The DHCP server,
   * which decides for every packet, passes its in-memory copy of the subnets instead.
   */
  subnetContaining?: (ip: number) => Subnet | null;
  /** The client's machine (null: none), when the caller has already looked it up by MAC. */
  machine?: Machine | null;
  /** The assignment rules in the order they are tried; by default a CMDB query (the DHCP server keeps them cached). */
  rules?: () => AssignmentRule[];
  /** The image a selector names; by default a CMDB query (the HTTP boot door keeps them cached). */
  resolveImage?: (selector: ImageSelector) => Image | null;
  /** Whether this node holds every blob of an image; by default a CMDB query (the HTTP boot door keeps answers cached). */
  imageReady?: (imageId: string) => boolean;
}

/**
 * client facts + CMDB → BootPlan. Reads only; the door performs side effects the plan asks
 * for (registering a discovered machine, writing boot events).
 */
export function decide(facts: ClientFacts, ctx: DecideContext): BootPlan {
  const { cmdb, config } = ctx;
  const containing = ctx.subnetContaining ?? ((ip: number) => cmdb.subnets.containing(ip));
  const base = config.http.publicUrl;
  const client = `${facts.firmware} ${facts.arch}${facts.archCode !== null ? ` (option 93 = ${facts.archCode}, ${archName(facts.archCode)})` : ''}`;
  const reasons: string[] = [`client ${facts.mac} via ${facts.door}: ${client}`];
  const machine = ctx.machine !== undefined ? ctx.machine : cmdb.machines.byCanonicalMac(facts.mac);
  const subnet = findSubnet(containing, facts, machine?.ip ?? null, reasons);
  const scriptUrl = `${base}/boot/${facts.mac}.ipxe`;
  const chain = chooseChain(facts, machine, subnet, config);
  const plan: BootPlan = {
    facts,
    machine,
    subnet,
    policy: 'known',
    action: 'boot',
    discover: false,
    chain,
    next: { kind: 'none' },
    scriptUrl,
    grubUrl: `${base}/${grubConfigPath(facts.mac)}`,
    image: null,
    artifacts: null,
    cmdline: '',
    template: 'ipxe/boot.ipxe',
    reasons,
    why: '',
  };

  let selector: ImageSelector | null = null;
  // Booting the commission image under policy commission: the kernel line says what to do after reporting.
  let commission = false;
  if (machine?.state === 'retired') {
    plan.policy = 'retired';
    reasons.push(`machine ${label(machine)} is retired: it boots nothing`);
    return finish(plan, 'ignore', config);
  } else if (machine) {
    reasons.push(`known machine ${label(machine)} (${machine.state})`);
    selector = imageOfKnownMachine(machine, subnet, (ctx.rules ?? (() => cmdb.assignments.rules()))(), reasons);
    if (!selector && subnet?.policy === 'commission') {
      selector = { name: config.facts.commissionImage, channel: 'stable', id: null };
      commission = true;
      reasons.push(`subnet ${subnet.name} policy is commission: boot ${selector.name}@stable, which reports the hardware again`);
    }
  } else {
    const policy = subnet?.policy ?? 'no-subnet';
    plan.policy = policy;
    if (policy === 'no-subnet') {
      reasons.push('unknown MAC and no subnet matches: ignored');
      return finish(plan, 'ignore', config);
    }
    if (policy === 'ignore') {
      reasons.push(`unknown MAC; subnet ${subnet!.name} policy is ignore`);
      return finish(plan, 'ignore', config);
    }
    plan.discover = true;
    if (policy === 'discover') {
      reasons.push(`unknown MAC; subnet ${subnet!.name} policy is discover: register it and ${subnet!.discoverAction === 'exit' ? 'exit to the next boot device' : 'wait for an operator'}`);
      return finish(plan, subnet!.discoverAction === 'exit' ? 'exit' : 'wait', config);
    }
    if (policy === 'commission') {
      selector = { name: config.facts.commissionImage, channel: 'stable', id: null };
      commission = true;
      reasons.push(`unknown MAC; subnet ${subnet!.name} policy is commission: register it and boot ${selector.name}@stable to report its hardware`);
    } else {
      selector = { name: subnet!.defaultImage.name, channel: subnet!.defaultImage.channel, id: null };
      reasons.push(`unknown MAC; subnet ${subnet!.name} policy is default-image: boot ${selector.name}@${selector.channel}`);
    }
  }

  if (!selector) return finish(plan, 'wait', config);
  const image = ctx.resolveImage ? ctx.resolveImage(selector) : cmdb.images.resolve(selector);
  if (!image) {
    reasons.push(
      selector.id
        ? `pinned image ${selector.id} is not in this catalog (livery image pull brings it from another server under the same id)`
        : cmdb.images.list({ name: selector.name! }).length === 0
          ? `no image named ${selector.name} in the catalog (a typo? livery image list shows the names)`
          : `channel ${selector.channel ?? 'stable'} of image ${selector.name} points at nothing yet`,
    );
    return finish(plan, 'wait', config);
  }
  // A node boots machines only into images whose blobs it holds (the others it is fetching from a peer).
  const node = nodeName(config);
  if (!(ctx.imageReady ? ctx.imageReady(image.id) : cmdb.imageNodes.isReady(image.id, node))) {
    reasons.push(`image ${image.id} (${image.name} ${image.version}) is not on node ${node} yet: its blobs are being fetched from a node that holds it`);
    return finish(plan, 'wait', config);
  }
  const channel = selector.id ? null : (selector.channel ?? 'stable');
  reasons.push(selector.id ? `pinned to image ${image.id} (${image.name} ${image.version})` : `${image.name}@${channel} is ${image.id} (version ${image.version})`);
  plan.image = { ...image, channel };
  const url = (file: string) => `${base}/images/${image.id}/${file}?mac=${facts.mac}`;
  const byRole = (role: string) => image.artifacts.find((a) => a.role === role);
  const rootfs = byRole('rootfs');
  plan.artifacts = {
    kernel: url(byRole('kernel')!.name),
    initrd: url(byRole('initrd')!.name),
    rootfs: rootfs ? url(rootfs.name) : null,
    rootfsSha256: rootfs?.sha256 ?? null,
  };
  plan.cmdline = kernelCommandLine(plan, config, commission);
  if (chain.secureBoot === 'on' && image.manifest.kernelSigned === false) {
    reasons.push(`warning: image ${image.id} has an unsigned kernel, which firmware enforcing Secure Boot refuses (${chain.source} says secureBoot on)`);
  }
  return finish(plan, 'boot', config);
}

/**
 * What a known machine boots, by precedence: its pin (an image id), else its own image
 * (name@channel), else the first assignment rule that matches it (rules come in the order
 * compareRules gives: priority, then more terms, then the older rule), else its subnet's
 * default image. The reasons name the rule that won and why each other one did not.
 */
function imageOfKnownMachine(machine: Machine, subnet: Subnet | null, rules: AssignmentRule[], reasons: string[]): ImageSelector | null {
  if (machine.image.id || machine.image.name) {
    const overridden = rules.find((r) => firstMismatch(r.terms, subjectOf(machine, subnet)) === null);
    if (overridden) reasons.push(`${ruleName(overridden)} also matches, but the machine's own image comes first`);
    return machine.image;
  }
  const subject = subjectOf(machine, subnet);
  let winner: AssignmentRule | null = null;
  for (const rule of rules) {
    if (winner) {
      reasons.push(`${ruleName(rule)} not used: ${ruleName(winner)} comes first (${precedence(winner, rule)})`);
      continue;
    }
    const miss = firstMismatch(rule.terms, subject);
    if (miss) {
      const want = miss.term.values.length === 1 ? miss.term.values[0] : `one of ${miss.term.values.join(', ')}`;
      reasons.push(`${ruleName(rule)} does not match: ${miss.term.key} is ${miss.actual === null ? 'not set' : miss.actual}, not ${want}`);
    } else {
      winner = rule;
      reasons.push(`${ruleName(rule)} matches: boot ${rule.image.name}@${rule.image.channel}`);
    }
  }
  if (winner) return { name: winner.image.name, channel: winner.image.channel, id: null };
  if (subnet?.defaultImage.name) {
    reasons.push(`no image of its own and no assignment rule matches: subnet ${subnet.name}'s default ${subnet.defaultImage.name}@${subnet.defaultImage.channel ?? 'stable'}`);
    return { name: subnet.defaultImage.name, channel: subnet.defaultImage.channel, id: null };
  }
  reasons.push(rules.length > 0 ? 'no image selected for this machine: no assignment rule matches and its subnet has no default image' : 'no image selected for this machine');
  return null;
}

const subjectOf = (m: Machine, subnet: Subnet | null) => ({ site: m.site, subnet: subnet?.name ?? m.subnet, labels: m.labels, facts: m.facts });
const ruleName = (r: AssignmentRule) => `rule #${r.id} (${r.selector} -> ${r.image.name}@${r.image.channel}, priority ${r.priority})`;

/** Why `a` is tried before `b` (see compareRules). */
function precedence(a: AssignmentRule, b: AssignmentRule): string {
  if (a.priority !== b.priority) return 'higher priority';
  if (a.terms.length !== b.terms.length) return 'same priority, more terms';
  return 'same priority and terms, older rule';
}

/** The kernel command line: livery's contract with the initrd and agent, then image and machine extras. */
function kernelCommandLine(plan: BootPlan, config: Config, commission: boolean): string {
  const parts = [
    `initrd=${plan.image!.artifacts.find((a) => a.role === 'initrd')!.name}`,
    `BOOTIF=${pxelinuxMacName(plan.facts.mac)}`,
    `livery.server=${config.http.publicUrl}`,
    `livery.image=${plan.image!.id}`,
  ];
  if (commission) parts.push(`livery.commission=${config.facts.commissionThen}`);
  if (plan.artifacts!.rootfs) parts.push(`livery.rootfs=${plan.artifacts!.rootfs}`, `livery.rootfs.sha256=${plan.artifacts!.rootfsSha256}`);
  if (config.boot.console) parts.push(`console=tty0`, `console=${config.boot.console}`);
  parts.push(...userArgs(`image ${plan.image!.id}`, plan.image!.kernelArgs, plan.reasons));
  if (plan.machine) parts.push(...userArgs(`machine ${label(plan.machine)}`, plan.machine.kernelArgs, plan.reasons));
  return parts.join(' ');
}

/**
 * Stored kernel arguments without livery's own parameters: writes refuse them, but a row or
 * manifest from before that rule must not override what the initrd trusts.
 */
function userArgs(owner: string, text: string, reasons: string[]): string[] {
  const { kept, dropped } = splitUserKernelArgs(text);
  if (dropped.length > 0) reasons.push(`ignored livery's own parameters in the kernel arguments of ${owner}: ${dropped.join(' ')}`);
  return kept;
}

/** Sets the action and what this client fetches next, given its firmware and loader chain. */
function finish(plan: BootPlan, action: BootPlan['action'], config: Config): BootPlan {
  plan.action = action;
  plan.why = plan.reasons[plan.reasons.length - 1]!;
  plan.template = `ipxe/${action === 'ignore' ? 'exit' : action}.ipxe`;
  if (action === 'ignore') {
    plan.next = { kind: 'none' };
    return plan;
  }
  const { firmware, arch } = plan.facts;
  const base = config.http.publicUrl;
  const shim = plan.chain.chain === 'shim';
  plan.reasons.push(plan.chain.reason);
  if (firmware === 'ipxe') plan.next = { kind: 'script', url: plan.scriptUrl };
  else if (firmware === 'grub') plan.next = { kind: 'script', url: plan.grubUrl };
  else if (firmware === 'uefi-http') {
    const loader = shim ? config.boot.loaderShim : arch === 'arm64' ? config.boot.loaderUefiArm64 : config.boot.httpBootLoader;
    plan.next = { kind: 'http', url: `${base}/loaders/${loader}` };
  } else if (firmware === 'uefi-pxe') plan.next = { kind: 'tftp', file: shim ? config.boot.loaderShim : arch === 'arm64' ? config.boot.loaderUefiArm64 : config.boot.loaderUefi };
  else plan.next = { kind: 'tftp', file: config.boot.loaderBios };
  const then = shim ? 'which loads the signed GRUB, which loads its grub.cfg' : 'which then runs iPXE';
  plan.reasons.push(
    plan.next.kind === 'tftp'
      ? `${firmware} client: first-stage loader ${plan.next.file} over TFTP, ${then}`
      : plan.next.kind === 'http'
        ? `UEFI HTTP Boot client: loader ${plan.next.url}${shim ? `, ${then}` : ''}`
        : firmware === 'grub'
          ? `GRUB client: config ${plan.next.url}`
          : `iPXE client: boot script ${plan.next.url}`,
  );
  return plan;
}

function findSubnet(containing: (ip: number) => Subnet | null, facts: ClientFacts, reservedIp: string | null, reasons: string[]): Subnet | null {
  if (facts.subnetHint !== null) {
    const s = containing(facts.subnetHint);
    if (s) {
      reasons.push(`subnet ${s.name} (${s.cidr})`);
      return s;
    }
  }
  const reserved = reservedIp ? containing(parseIpv4(reservedIp)!) : null;
  if (reserved) reasons.push(`subnet ${reserved.name} (${reserved.cidr}), from the machine's reserved address`);
  return reserved;
}

const label = (m: { hostname: string | null; id: number }) => m.hostname ?? `#${m.id}`;
