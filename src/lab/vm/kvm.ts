import { spawn } from 'node:child_process';
import { accessSync, constants, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleLog } from './console.js';
import { OVMF_VARS_TEMPLATE, QEMU, qemuArgs, type Accel, type Firmware } from './qemu.js';

export interface AccelChoice {
  accel: Accel;
  /** Why, for the log: what the probe saw. */
  reason: string;
}

/**
 * iPXE's banner. The NIC's iPXE ROM prints it once it runs in protected mode (BIOS) or as an EFI
 * driver (UEFI), which is past the points where a broken nested KVM stops: SeaBIOS triple-faults
 * or hangs entering iPXE, OVMF dies with an emulation failure.
 */
const IPXE_BANNER = /Open Source Network Boot Firmware/;
const KVM_FAILURE = /KVM internal error|emulation failure|failed to initialize kvm|Could not access KVM/i;

/** Working KVM gets there in a second or two; TCG would need ten times that. */
const PROBE_TIMEOUT_MS = 12_000;
const probes = new Map<Firmware, Promise<AccelChoice>>();

/**
 * KVM if a short probe boot shows it really runs this firmware, else TCG. An openable /dev/kvm
 * proves nothing (nested KVM often cannot run firmware), so the probe boots the firmware with a
 * NIC ROM under KVM, plugged into nothing, and waits for iPXE's banner. Once per firmware and process.
 */
export function chooseAccel(firmware: Firmware): Promise<AccelChoice> {
  let probe = probes.get(firmware);
  if (!probe) {
    probe = probeKvm(firmware);
    probes.set(firmware, probe);
  }
  return probe;
}

async function probeKvm(firmware: Firmware): Promise<AccelChoice> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: 'no usable /dev/kvm' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'livery-kvm-probe-'));
  const screen = new ConsoleLog(join(dir, 'console.log'));
  const uefiVars = join(dir, 'OVMF_VARS.fd');
  if (firmware === 'uefi') copyFileSync(OVMF_VARS_TEMPLATE, uefiVars);
  const args = qemuArgs({ firmware, accel: 'kvm', memoryMiB: 256, cpus: 1, mac: '52:54:00:00:00:01', tap: null, nicRom: true, uefiVars, console: { file: screen.path }, exitOnReboot: true });
  const qemu = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr!.on('data', (d) => (stderr += d));
  let failure: string | null = null;
  qemu.once('error', (err) => (failure = `cannot start ${QEMU}: ${err.message}`));
  try {
    await screen.waitFor(IPXE_BANNER, {
      timeoutMs: PROBE_TIMEOUT_MS,
      pollMs: 200,
      stopped: () => {
        if (failure) return failure;
        const kvmError = KVM_FAILURE.exec(stderr);
        if (kvmError) return `KVM failed (${kvmError[0]})`;
        if (qemu.exitCode !== null || qemu.signalCode !== null) return `QEMU exited (${stderr.trim().split('\n').pop() ?? 'no message'})`;
        return null;
      },
    });
    return { accel: 'kvm', reason: `KVM probe: ${firmware} firmware reached iPXE` };
  } catch (err) {
    const why = (err as Error).message.split(';')[0]!;
    return { accel: 'tcg', reason: `KVM probe failed for ${firmware} firmware: ${why}` };
  } finally {
    if (qemu.pid !== undefined && qemu.exitCode === null && qemu.signalCode === null) {
      const exited = new Promise((r) => qemu.once('exit', r));
      qemu.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
