import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { onTestFailed } from 'vitest';
import {
  AGENT_GAVE_UP, chooseAccel, createNamespace, createPrivateNetwork, HEALTH_REPORTED, PHONE_HOME, startLabLivery, startVm, stopProcess, waitForOutput,
  type AccelChoice, type Firmware, type LabLivery, type LabLiveryOptions, type Namespace, type NetworkOptions, type PrivateNetwork, type Vm, type VmOptions,
} from '../../../src/lab/vm/index.js';

export const CLI = resolve(import.meta.dirname, '../../../dist/cli/main.js');
/** Consoles and server logs of failed boots are kept here (make clean removes test/.tmp). */
export const ARTIFACTS = resolve(import.meta.dirname, '../../.tmp/e2e-artifacts');

/** GET /v1/machines/<mac>/trace, one boot. */
export interface TracedBoot {
  startedAt: string;
  reached: string | null;
  complete: boolean;
  stoppedBefore: string | null;
  lastStep: string | null;
  imageId: string | null;
  stages: { stage: string; at: string; count: number; event: string; detail: Record<string, unknown> }[];
}

export interface BootOptions {
  mac: string;
  firmware: Firmware;
  /** Default true; false boots through the firmware's own PXE client and TFTP. */
  nicRom?: boolean;
  /** UEFI only: OVMF enforcing Secure Boot with Microsoft's keys (implies no NIC ROM: QEMU's iPXE ROM is unsigned). */
  secureBoot?: boolean;
  /**
   * The console line that ends this boot (phone-home, or a script's echo for a short boot). A
   * boot until the phone-home also waits for the agent's health report when the image has checks.
   */
  until: RegExp;
  /** The image declares health checks: after the phone-home, wait for the agent's verdict too. */
  checks?: boolean;
  timeoutMs: number;
  /** The segment the VM is plugged into (default the lab's own, where livery is). */
  net?: PrivateNetwork;
  /** The VM's hardware, when not the default (2 CPUs, 1 GiB, no disk, no BMC). */
  machine?: Pick<VmOptions, 'cpus' | 'memoryMiB' | 'disks' | 'bmc'>;
  /** A concurrent test's own onTestFailed (its context's): vitest's global one cannot tell concurrent tests apart. */
  onTestFailed?: typeof onTestFailed;
}

export interface LabOptions {
  /** Goes into the namespace names (default e2e); labs open side by side need different tags. */
  tag?: string;
  dhcpMode?: 'full' | 'proxy';
  /** Addresses relays send from besides their giaddr (dhcp.relaySources). */
  relaySources?: string[];
  /** How this lab reaches its VMs (e.g. "proxyDHCP beside dnsmasq"), printed with each boot time. */
  label?: string;
  /** Its livery is one node of several sharing a PostgreSQL CMDB. */
  cluster?: LabLiveryOptions['cluster'];
}

/**
 * How many VMs boot at once across every lab of this process (E2E_PARALLEL_VMS, default 2):
 * a boot under TCG keeps a core busy, but spends part of its time waiting (DHCP, PXE timers).
 */
class VmSlots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(count: number) {
    this.free = count;
  }

  /** Resolves once a VM may start; call the returned function when it has stopped. */
  async take(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
const vmSlots = new VmSlots(Math.max(1, Number(process.env.E2E_PARALLEL_VMS) || 2));

/** A program beside livery (another DHCP server, a relay) and what it printed. */
interface Service {
  name: string;
  proc: ChildProcess;
  output(): string;
}

export interface BootRun {
  match: RegExpMatchArray;
  /** The whole console, plain text. */
  console: string;
}

/**
 * The world of the end-to-end test: a private network namespace with a bridge, a real
 * `livery serve` in it (DHCP full or proxy mode on the bridge only), and VMs started on taps
 * there or on further segments the test adds (behind a relay), with the hosts and programs a
 * test adds beside livery (another DHCP server, a relay, a plain DHCP client). Every boot is
 * bounded in time, and its VM is stopped whatever happens; a failed test keeps the console, the
 * server log and the other programs' output in test/.tmp/e2e-artifacts/.
 */
export class BootLab {
  private readonly vms = new Set<Vm>();
  private readonly accels = new Map<Firmware, AccelChoice>();
  private readonly services: Service[] = [];
  /** Hosts and segments added by the test, removed on close (last added first). */
  private readonly added: { remove(): void }[] = [];

  private constructor(
    readonly net: PrivateNetwork,
    /** The lab's livery; restartLivery() replaces it. */
    public livery: LabLivery,
    private readonly startAgain: () => Promise<LabLivery>,
    private readonly work: string,
    private readonly label: string,
  ) {}

  static async open(work: string, o: LabOptions = {}): Promise<BootLab> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "make build" first`);
    const tag = o.tag ?? 'e2e';
    const net = createPrivateNetwork({ tag });
    const options: LabLiveryOptions = { net, dataDir: join(work, tag, 'livery'), cli: CLI, policy: 'discover', dhcpMode: o.dhcpMode, relaySources: o.relaySources, cluster: o.cluster };
    try {
      const livery = await startLabLivery(options);
      return new BootLab(net, livery, () => startLabLivery({ ...options, rejoin: {} }), join(work, tag), o.label ?? `dhcp ${o.dhcpMode ?? 'full'}`);
    } catch (err) {
      net.remove();
      throw err;
    }
  }

  /** Starts the lab's livery again on its data dir, after it stopped or was killed. */
  async restartLivery(): Promise<void> {
    this.livery = await this.startAgain();
  }

  /** A namespace of its own (removed on close); plug it into a segment with PrivateNetwork.plug. */
  addHost(tag: string): Namespace {
    const host = createNamespace(tag);
    this.added.push(host);
    return host;
  }

  /** One more segment with its own bridge (removed on close), e.g. the VMs' side of a relay. */
  addNetwork(o: NetworkOptions): PrivateNetwork {
    const net = createPrivateNetwork(o);
    this.added.push(net);
    return net;
  }

  /**
   * Starts a program in `host` and waits until it prints `ready`. It is stopped on close, and
   * what it printed is kept with a failed boot's artifacts.
   */
  async startService(name: string, host: Namespace, cmd: string, args: string[], ready: string): Promise<void> {
    const proc = host.spawn(cmd, args);
    let output = '';
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    this.services.push({ name, proc, output: () => output });
    await waitForOutput(proc, () => output, ready, 30_000, name);
  }

  /** KVM where a probe boot shows it works, else TCG (printed, never assumed). */
  async accel(firmware: Firmware): Promise<AccelChoice> {
    if (!this.accels.has(firmware)) {
      const choice = await chooseAccel(firmware);
      console.log(`e2e: ${firmware} VMs use ${choice.accel}: ${choice.reason}`);
      this.accels.set(firmware, choice);
    }
    return this.accels.get(firmware)!;
  }

  /**
   * Boots a VM until `until` shows on its console, then stops it. Call inside a test; at most
   * E2E_PARALLEL_VMS boot at once, and each one's time counts from its own start.
   */
  async boot(name: string, o: BootOptions): Promise<BootRun> {
    let vm: Vm | null = null;
    // Registered before the first await, while vitest still knows which test this is.
    (o.onTestFailed ?? onTestFailed)(() => this.keepArtifacts(name, vm));
    const { accel } = await this.accel(o.firmware);
    const release = await vmSlots.take();
    try {
      vm = startVm({
        net: o.net ?? this.net, dir: join(this.work, name), mac: o.mac, firmware: o.firmware, accel,
        nicRom: o.secureBoot ? false : (o.nicRom ?? true), secureBoot: o.secureBoot, ...o.machine,
      });
    } catch (err) {
      release();
      throw err;
    }
    this.vms.add(vm);
    try {
      const match = await vm.console.waitFor(o.until, { timeoutMs: o.timeoutMs, stopped: vm.stopped, failOn: AGENT_GAVE_UP });
      if (o.checks) await vm.console.waitFor(HEALTH_REPORTED, { timeoutMs: o.timeoutMs - (Date.now() - vm.startedAt), stopped: vm.stopped, failOn: AGENT_GAVE_UP });
      const seconds = Math.round((Date.now() - vm.startedAt) / 1000);
      const what = o.until === PHONE_HOME ? 'booted' : `reached ${o.until}`;
      const how = o.secureBoot ? ', Secure Boot enforced' : o.nicRom === false ? ', firmware PXE + TFTP' : ', NIC iPXE ROM';
      console.log(`e2e: ${name}: ${what} in ${seconds} s (${o.firmware}${how}, ${accel}; ${this.label})`);
      return { match, console: vm.console.plain() };
    } finally {
      await vm.stop();
      this.vms.delete(vm);
      release();
    }
  }

  /** The most recent boot in the machine's trace. */
  async lastBoot(mac: string): Promise<TracedBoot> {
    const trace = await this.livery.cli<{ boots: TracedBoot[] }>(['machine', 'trace', mac, '--boots', '1']);
    const last = trace.boots.at(-1);
    if (!last) throw new Error(`no boot traced for ${mac}`);
    return last;
  }

  async close(): Promise<void> {
    for (const vm of this.vms) await vm.stop();
    for (const s of this.services) await stopProcess(s.proc);
    await this.livery.stop();
    for (const a of this.added.reverse()) a.remove();
    this.net.remove();
  }

  private keepArtifacts(name: string, vm: Vm | null): void {
    mkdirSync(ARTIFACTS, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const qemu = vm?.messages() ? `\n--- qemu\n${vm.messages()}` : '';
    const services = this.services.map((s) => `\n--- ${s.name}\n${s.output()}`).join('');
    writeFileSync(join(ARTIFACTS, `${stamp}-${name}.livery.log`), this.livery.output() + qemu + services);
    if (vm && existsSync(vm.console.path)) copyFileSync(vm.console.path, join(ARTIFACTS, `${stamp}-${name}.console.log`));
    console.error(`e2e: ${name} failed; console and livery log kept in ${ARTIFACTS}. Console tail:\n${vm?.console.tail(30) ?? '(no VM started)'}`);
  }
}

/** Stages in the order a boot first reached them. */
export const stageOrder = (boot: TracedBoot): string[] => [...new Set(boot.stages.map((s) => s.stage))];

/** A boot's events with their seconds from its start, as a line: the message of an assertion on its stages. */
export const traceLine = (boot: TracedBoot): string =>
  boot.stages.map((s) => `${s.event}${s.count > 1 ? `×${s.count}` : ''}@${((Date.parse(s.at) - Date.parse(boot.startedAt)) / 1000).toFixed(1)}`).join(' → ');

/** The first stage entry of a kind (e.g. the firmware's dhcp-offer). */
export function firstEvent(boot: TracedBoot, event: string): TracedBoot['stages'][number] {
  const found = boot.stages.find((s) => s.event === event);
  if (!found) throw new Error(`no ${event} in the boot: ${boot.stages.map((s) => s.event).join(', ')}`);
  return found;
}
