import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleLog } from './console.js';
import type { PrivateNetwork } from './network.js';
import { ovmfVarsTemplate, QEMU, qemuArgs, type Accel, type Firmware, type QemuSpec } from './qemu.js';

export interface VmOptions {
  net: PrivateNetwork;
  /** Console log, OVMF variable store and QEMU's messages go here. */
  dir: string;
  mac: string;
  firmware: Firmware;
  accel: Accel;
  /** false: no iPXE ROM on the NIC; the firmware's own PXE client fetches a loader over TFTP. */
  nicRom?: boolean;
  /** MiB; the rootfs squashfs lives in RAM (a tmpfs), so this holds it plus the running system. */
  memoryMiB?: number;
  cpus?: number;
  /** Console on the terminal (an interactive `livery vm boot`) instead of only in the log file. */
  terminal?: boolean;
  /** Default true: a reboot ends QEMU, so one run is exactly one boot. */
  exitOnReboot?: boolean;
  /** Raw image files attached as virtio disks. */
  disks?: string[];
  /** UEFI with Secure Boot enforced (Microsoft's keys enrolled). */
  secureBoot?: boolean;
  /** An external IPMI BMC (ipmi_sim's VM interface) the guest sees on its KCS system interface. */
  bmc?: QemuSpec['bmc'];
}

export interface Vm {
  readonly console: ConsoleLog;
  /** Date.now() when QEMU started: boot times are measured from here. */
  readonly startedAt: number;
  /** Why the VM is gone (exit code, signal or spawn error), or null while it runs. */
  stopped(): string | null;
  /** QEMU's own messages (stderr), when the console is not on the terminal. */
  messages(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the tap. Safe to call twice. */
  stop(): Promise<void>;
}

/** A diskless VM that network-boots from `net`, started in its namespace on a fresh tap. */
export function startVm(opts: VmOptions): Vm {
  mkdirSync(opts.dir, { recursive: true });
  const serial = new ConsoleLog(join(opts.dir, 'console.log'));
  const uefiVars = join(opts.dir, 'OVMF_VARS.fd');
  // Each start gets a fresh variable store: no boot entries left over from an earlier run.
  if (opts.firmware === 'uefi') copyFileSync(ovmfVarsTemplate(opts.secureBoot), uefiVars);
  const tap = opts.net.addTap();
  const args = qemuArgs({
    firmware: opts.firmware,
    accel: opts.accel,
    memoryMiB: opts.memoryMiB ?? 1024,
    cpus: opts.cpus ?? 2,
    mac: opts.mac,
    tap,
    nicRom: opts.nicRom ?? true,
    uefiVars,
    secureBoot: opts.secureBoot,
    console: opts.terminal ? { terminal: true, log: serial.path } : { file: serial.path },
    exitOnReboot: opts.exitOnReboot ?? true,
    disks: opts.disks,
    bmc: opts.bmc,
  });
  let proc: ChildProcess;
  try {
    proc = opts.net.spawn(QEMU, args, { stdio: opts.terminal ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    opts.net.removeTap(tap);
    throw err;
  }
  let messages = '';
  proc.stderr?.on('data', (d) => (messages += d));
  let spawnError: string | null = null;
  proc.once('error', (err) => (spawnError = err.message));
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.once('error', () => resolve());
  });
  const stopped = () =>
    spawnError ? `QEMU could not start (${spawnError})` : proc.exitCode !== null ? `QEMU exited with code ${proc.exitCode}` : proc.signalCode ? `QEMU was killed (${proc.signalCode})` : null;
  return {
    console: serial,
    startedAt: Date.now(),
    stopped,
    messages: () => messages,
    async stop() {
      if (!stopped()) {
        proc.kill('SIGTERM');
        const killLater = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killLater);
      }
      opts.net.removeTap(tap);
    },
  };
}
