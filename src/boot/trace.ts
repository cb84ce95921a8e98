import type { LivEvent } from '../cmdb/types.js';
import { SERVED_PLANS } from '../cmdb/events.js';

/**
 * The stages of one network boot, in the order a machine passes them (power: livery switched it
 * on through its BMC); the last is the agent's health verdict after the phone-home, one of the two.
 */
export const STAGES = ['power', 'dhcp', 'tftp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy', 'unhealthy'] as const;
export type Stage = (typeof STAGES)[number];

export interface BootTrace {
  startedAt: string;
  /** Repeats of a stage in a row (an iPXE retry loop) are folded into one entry with a count. */
  stages: { stage: Stage; at: string; lastAt: string; count: number; event: string; detail: Record<string, unknown> }[];
  /** The last stage reached, and the next one expected if the boot did not finish. */
  reached: Stage | null;
  complete: boolean;
  stoppedBefore: Stage | null;
  /** For a boot that stopped: what the client did last and what never followed, in a sentence. */
  lastStep: string | null;
  imageId: string | null;
}

/** Which trace stage an event belongs to (events that are not boot stages map to null). */
export function stageOf(e: LivEvent): Stage | null {
  if (e.type === 'power') return e.detail.result === 'ok' && BOOTING_ACTIONS.has(String(e.detail.action)) ? 'power' : null;
  if (e.type.startsWith('dhcp-')) return 'dhcp';
  if (e.type === 'tftp') return 'tftp';
  // The plan a loader runs: an iPXE script, or a GRUB/pxelinux config over TFTP.
  if ((SERVED_PLANS as readonly string[]).includes(e.type)) return 'script';
  if (e.type === 'artifact') {
    const role = e.detail.role;
    return role === 'kernel' || role === 'initrd' || role === 'rootfs' ? role : null;
  }
  if (e.type === 'booted' || e.type === 'healthy' || e.type === 'unhealthy') return e.type;
  return null;
}

/** Power actions after which the machine boots (a power-off or a status read starts nothing). */
const BOOTING_ACTIONS = new Set(['on', 'cycle', 'reset']);

/** The events a DHCP DISCOVER leaves: dhcp-offer when it was answered, dhcp-discover when not. */
const DISCOVER_EVENTS = new Set(['dhcp-discover', 'dhcp-offer']);

/**
 * Whether a DHCP DISCOVER begins a new boot of a machine whose current boot got to `reached`.
 * Boot firmware (a PXE ROM, UEFI, iPXE) announces itself in the vendor or user class; the DHCP
 * clients of the initramfs and of the booted system do not, and belong to the boot they are
 * part of. So does iPXE right after a TFTP stage: that is the loader the firmware just fetched.
 */
function startsBoot(e: LivEvent, reached: Stage | null): boolean {
  if (e.type === 'power') return reached !== null;
  if (!DISCOVER_EVENTS.has(e.type) || reached === null || reached === 'dhcp' || reached === 'power') return false;
  const vendor = typeof e.detail.vendorClass === 'string' ? e.detail.vendorClass : '';
  const userClass = Array.isArray(e.detail.userClass) ? e.detail.userClass : [];
  const ipxe = userClass.includes('iPXE');
  if (ipxe && reached === 'tftp') return false;
  return ipxe || vendor.startsWith('PXEClient') || vendor.startsWith('HTTPClient');
}

const isVerdict = (stage: Stage) => stage === 'healthy' || stage === 'unhealthy';

/**
 * Groups a MAC's events into boots. A new boot starts at a power-on or reset livery made
 * through the BMC, at a boot firmware's DHCP DISCOVER once the current boot got past DHCP (the
 * machine rebooted), or after a phone-home, except for the health report that follows it, which
 * closes the boot it judges.
 */
export function traceBoots(events: LivEvent[]): BootTrace[] {
  const boots: BootTrace[] = [];
  let current: BootTrace | null = null;
  for (const e of events) {
    const stage = stageOf(e);
    if (!stage) continue;
    const rank = STAGES.indexOf(stage);
    const verdictOfCurrent = isVerdict(stage) && current?.complete === true && !current.stages.some((st) => isVerdict(st.stage));
    if (!current || (current.complete && !verdictOfCurrent) || startsBoot(e, current.reached)) {
      current = { startedAt: e.at, stages: [], reached: null, complete: false, stoppedBefore: null, lastStep: null, imageId: null };
      boots.push(current);
    }
    const c = current!;
    const last = c.stages[c.stages.length - 1];
    if (last && last.stage === stage && last.event === e.type && stage !== 'dhcp') {
      last.count++;
      last.lastAt = e.at;
      last.detail = e.detail;
    } else {
      c.stages.push({ stage, at: e.at, lastAt: e.at, count: 1, event: e.type, detail: e.detail });
    }
    if (c.reached === null || rank > STAGES.indexOf(c.reached)) c.reached = stage;
    if (e.imageId) c.imageId = e.imageId;
    if (stage === 'booted') c.complete = true;
  }
  for (const b of boots) {
    if (!b.complete && b.reached) {
      // A boot that never touched TFTP (iPXE in ROM, UEFI HTTP) skips that stage.
      const next = STAGES.slice(STAGES.indexOf(b.reached) + 1).find((s) => s !== 'tftp' || b.reached === 'dhcp');
      b.stoppedBefore = next ?? null;
      b.lastStep = describeStop(b);
    }
  }
  return boots;
}

type TraceStage = BootTrace['stages'][number];

/** What was expected next, by the last stage reached (a boot past the phone-home is complete). */
const AWAITED: Partial<Record<Stage, string>> = {
  power: 'DHCP request',
  dhcp: 'TFTP or HTTP request',
  tftp: 'HTTP request for the iPXE script',
  script: 'kernel download',
  kernel: 'initrd download',
  initrd: 'rootfs download',
  rootfs: 'phone-home',
};

/** The client's last step as words: `n` is how many times in a row it did it. */
function lastDeed(s: TraceStage, n: number): string {
  const d = s.detail;
  const times = n > 1 ? ` ${n} times` : '';
  switch (s.event) {
    case 'dhcp-proxy-request':
      // Each answer went out: a client that asks again did not take it.
      return n > 1 ? `client retried its ProxyDHCP request (port 4011) ${n} times: it did not take livery's answers` : 'client sent a ProxyDHCP request (port 4011)';
    case 'dhcp-proxy-discover':
      return `client asked for ProxyDHCP boot information${times} (its address comes from another DHCP server)`;
    case 'dhcp-offer':
      return n > 1 ? `client was offered ${d.ip} ${n} times and never requested it` : `client was offered ${d.ip}`;
    case 'dhcp-discover':
      return `client's DHCP discover went unanswered${times}`;
    case 'dhcp-ack':
      return `client got its address ${d.ip}${times}`;
    case 'dhcp-nak':
      return `client was refused an address${times} (${d.message})`;
    case 'tftp':
      return `client fetched ${d.file} over TFTP${times} (${d.result})`;
    case 'ipxe-script':
      return `client fetched its iPXE script${times} (${d.template})`;
    case 'artifact':
      return `client fetched the ${d.role}${times}`;
    default:
      return `client's last event was ${s.event}${times}`;
  }
}

/**
 * Where and what a stopped boot's client did last, e.g. "client retried its ProxyDHCP request
 * (port 4011) 4 times: it did not take livery's answers; no TFTP or HTTP request followed": the
 * repeats of its last event in a row (DHCP events are not folded, so they are counted here).
 */
function describeStop(b: BootTrace): string | null {
  const last = b.stages.at(-1);
  if (!last || !b.reached) return null;
  let n = 0;
  for (let i = b.stages.length - 1; i >= 0 && b.stages[i]!.event === last.event && b.stages[i]!.stage === last.stage; i--) n += b.stages[i]!.count;
  const awaited = AWAITED[b.reached];
  return awaited ? `${lastDeed(last, n)}; no ${awaited} followed` : lastDeed(last, n);
}
