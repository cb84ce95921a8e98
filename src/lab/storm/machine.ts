import type { DhcpPacket } from '../../dhcp/wire/codec.js';
import { retrying } from './backoff.js';
import { bootfileOf, dhcpRound, type DhcpLease, type DhcpTiming, type Firmware, type VirtualNic } from './dhcp-client.js';
import type { DhcpHub } from './dhcp-hub.js';
import { MachineHttp } from './http-client.js';
import { stormGuid, stormMac } from './identity.js';
import { parseBootScript, type BootTargets } from './script.js';
import type { TftpClients } from './tftp-clients.js';

/** A BIOS machine's boot, stage by stage, in the order it happens. */
export const STAGES = ['dhcp-pxe', 'tftp-loader', 'dhcp-ipxe', 'http-script', 'http-artifacts', 'http-phone-home'] as const;
export type Stage = (typeof STAGES)[number];

/** What every machine must end up with. */
export interface Expected {
  /** The image the machines' channel points at; null: whatever livery serves (a rollout's machines, forward or back). */
  imageId: string | null;
  /** Artifact file name → size in bytes, from the image's manifest. */
  artifacts: Record<string, number>;
  /** The loader file the PXE OFFER must name, and its size. */
  loader: { file: string; bytes: number };
}

export interface MachineSettings {
  hub: DhcpHub;
  tftpClients: TftpClients;
  /** livery's DHCP addresses (server identifiers): replies from any of them count. */
  servers: readonly string[];
  tftpPort: number;
  expected: Expected;
  dhcp: DhcpTiming;
  tftp: { blksize: number; waitsMs: number[]; retryWaitsMs: number[] };
  http: { idleMs: number; retryWaitsMs: number[] };
  /**
   * Times the machine goes through its whole boot: a boot that fails at any stage starts over
   * from DHCP, as a PXE ROM that gives up hands back to a BIOS whose boot order comes round
   * to the network again (and so reaches whichever server answers now).
   */
  bootAttempts: number;
  /** Hears each ACK as the machine takes it (the simulator's --log-acks), for a caller acting in the middle of a storm. */
  onAck?(mac: string, ack: SeenAck): void;
  signal: AbortSignal;
  /** Milliseconds since the storm started. */
  clock(): number;
}

export interface StageTime {
  startMs: number;
  ms: number;
}

/** A DHCP ACK the machine took: which server sent it, the address, and when (storm clock). */
export interface SeenAck {
  server: string;
  ip: string;
  atMs: number;
}

export interface MachineResult {
  index: number;
  mac: string;
  /** The address it ended with (from the iPXE round), or the PXE one if it got no further. */
  ip: string | null;
  /** `livery.image` of its boot script. */
  imageId: string | null;
  ok: boolean;
  startMs: number;
  endMs: number;
  /** Stages its last boot completed, with when each began and how long it took. */
  stages: Partial<Record<Stage, StageTime>>;
  /** Every ACK of every boot, in order. */
  acks: SeenAck[];
  artifactBytes: number;
  tftpRetransmissions: number;
  /** Why each DHCP round, TFTP transfer, HTTP request or whole boot that was started over failed. */
  retries: { stage: Stage; error: string }[];
  failure: { stage: Stage; error: string } | null;
}

/** A boot that failed at `stage`. */
class StageFailure extends Error {
  constructor(
    readonly stage: Stage,
    cause: unknown,
  ) {
    super((cause as Error).message);
  }
}

/**
 * One virtual machine booting, up to its agent's phone-home, at most `bootAttempts` times:
 * each stage is a step that either hands the next one what it needs (a lease, a loader, a
 * script's targets) or fails the boot with its reason.
 */
export async function bootMachine(index: number, s: MachineSettings): Promise<MachineResult> {
  const nic: VirtualNic = { mac: stormMac(index), guid: stormGuid(index) };
  const r: MachineResult = {
    index,
    mac: nic.mac,
    ip: null,
    imageId: null,
    ok: false,
    startMs: s.clock(),
    endMs: 0,
    stages: {},
    acks: [],
    artifactBytes: 0,
    tftpRetransmissions: 0,
    retries: [],
    failure: null,
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await bootOnce(nic, s, r);
      r.ok = true;
      break;
    } catch (err) {
      const failure = err instanceof StageFailure ? { stage: err.stage, error: err.message } : { stage: STAGES[0], error: (err as Error).message };
      if (attempt >= s.bootAttempts || s.signal.aborted) {
        r.failure = failure;
        break;
      }
      r.retries.push({ stage: failure.stage, error: `boot ${attempt} failed, starting over: ${failure.error}` });
      r.stages = {};
    }
  }
  r.endMs = s.clock();
  return r;
}

/** One boot from power-on; throws a StageFailure naming the stage that failed. */
async function bootOnce(nic: VirtualNic, s: MachineSettings, r: MachineResult): Promise<void> {
  const stage = async <T>(name: Stage, step: () => Promise<T>): Promise<T> => {
    const startMs = s.clock();
    try {
      const out = await step();
      r.stages[name] = { startMs, ms: s.clock() - startMs };
      return out;
    } catch (err) {
      throw new StageFailure(name, err);
    }
  };
  const retried = (during: Stage) => (err: Error) => r.retries.push({ stage: during, error: err.message });
  const dhcp = async (name: Stage, firmware: Firmware, check: (reply: DhcpPacket) => string | null) => {
    const lease = await stage(name, () => dhcpRound(s.hub, s.servers, nic, firmware, check, s.dhcp, s.signal, retried(name)));
    const ack = { server: lease.server, ip: lease.ip, atMs: s.clock() };
    r.acks.push(ack);
    s.onAck?.(nic.mac, ack);
    r.ip = lease.ip;
    return lease;
  };
  const pxe = await dhcp('dhcp-pxe', 'bios-pxe', namesLoader(s.expected.loader.file));
  await stage('tftp-loader', () => retrying(s.tftp.retryWaitsMs, s.signal, () => fetchLoader(pxe, s, r), retried('tftp-loader')));
  const ipxe = await dhcp('dhcp-ipxe', 'ipxe', namesScript(nic.mac));
  const http = new MachineHttp(ipxe.ip, s.http.idleMs);
  try {
    const get = (during: Stage) => (url: string, keepText: boolean) => retrying(s.http.retryWaitsMs, s.signal, () => http.get(url, keepText, s.signal), retried(during));
    const targets = await stage('http-script', async () => {
      const parsed = parseBootScript((await get('http-script')(ipxe.bootfile, true)).text!);
      if (!parsed.ok) throw new Error(parsed.error);
      r.imageId = parsed.targets.imageId;
      if (s.expected.imageId !== null && r.imageId !== s.expected.imageId) throw new Error(`boots image ${r.imageId}, but its channel points at ${s.expected.imageId}`);
      return parsed.targets;
    });
    await stage('http-artifacts', () => fetchArtifacts(targets, s.expected, get('http-artifacts'), r));
    // The booted system's agent reports the boot, from the machine's own address. (An image
    // without health checks is healthy once it phoned home; the storm's images have none.)
    const server = new URL(ipxe.bootfile).origin;
    await stage('http-phone-home', () =>
      retrying(s.http.retryWaitsMs, s.signal, () => http.postJson(`${server}/v1/machines/${nic.mac}/booted`, { imageId: r.imageId }, s.signal), retried('http-phone-home')),
    );
  } finally {
    http.close();
  }
}

/** PXE OFFER and ACK: siaddr and boot file must send the ROM to the loader over TFTP. */
function namesLoader(file: string) {
  return (reply: DhcpPacket): string | null => {
    if (bootfileOf(reply) !== file) return `boot file ${JSON.stringify(bootfileOf(reply))}, expected ${file}`;
    if (reply.siaddr === '0.0.0.0') return 'no next server (siaddr)';
    return null;
  };
}

/** iPXE OFFER and ACK: option 67 must be this machine's own script, which breaks the chainload loop. */
function namesScript(mac: string) {
  const script = new RegExp(`^https?://[^/]+/boot/${mac}\\.ipxe$`);
  return (reply: DhcpPacket): string | null => (script.test(bootfileOf(reply)) ? null : `boot file ${JSON.stringify(bootfileOf(reply))} is not /boot/${mac}.ipxe`);
}

async function fetchLoader(lease: DhcpLease, s: MachineSettings, r: MachineResult): Promise<void> {
  const got = await s.tftpClients.get({ server: lease.siaddr, port: s.tftpPort, localAddress: lease.ip, file: lease.bootfile, blksize: s.tftp.blksize, waitsMs: s.tftp.waitsMs, signal: s.signal });
  r.tftpRetransmissions += got.retransmissions;
  const want = s.expected.loader.bytes;
  if (got.tsize !== want) throw new Error(`OACK tsize ${got.tsize}, but ${lease.bootfile} has ${want} bytes`);
  if (got.bytes !== want) throw new Error(`received ${got.bytes} of ${want} bytes of ${lease.bootfile}`);
}

/** Kernel, initrd and rootfs in the order the boot fetches them; each must be its manifest size. */
async function fetchArtifacts(
  targets: BootTargets,
  expected: Expected,
  get: (url: string, keepText: boolean) => Promise<{ bytes: number }>,
  r: MachineResult,
): Promise<void> {
  const seen = new Set<string>();
  for (const url of [targets.kernelUrl, targets.initrdUrl, targets.rootfsUrl]) {
    const name = decodeURIComponent(new URL(url).pathname.split('/').pop()!);
    const want = expected.artifacts[name];
    if (want === undefined) throw new Error(`script names ${name}, which the manifest does not have`);
    const got = await get(url, false);
    if (got.bytes !== want) throw new Error(`${name}: ${got.bytes} bytes, manifest says ${want}`);
    r.artifactBytes += got.bytes;
    seen.add(name);
  }
  const missing = Object.keys(expected.artifacts).filter((n) => !seen.has(n));
  if (missing.length > 0) throw new Error(`never fetched ${missing.join(', ')}`);
}
