import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PHONE_HOME } from './console.js';
import { chooseAccel } from './kvm.js';
import { startLabLivery, type LabLivery } from './lab.js';
import { createPrivateNetwork, type PrivateNetwork } from './network.js';
import type { Accel, Firmware } from './qemu.js';
import { startVm, type Vm } from './vm.js';

export interface VmSessionOptions {
  /** Image bundle published into the throwaway livery. */
  bundle: string;
  mac: string;
  hostname: string;
  firmware: Firmware;
  /** false: boot through the firmware's own PXE client and a TFTP loader (as real servers do). */
  nicRom: boolean;
  /** 'auto': KVM only if a probe boot shows it works here. */
  accel: Accel | 'auto';
  memoryMiB: number;
  cpus: number;
  /** The livery CLI the throwaway server runs (dist/cli/main.js). */
  cli: string;
  /** Stop once the image phoned home (scripted runs) instead of when QEMU exits or on a signal. */
  exitOnBoot: boolean;
  /** Give up when the image has not phoned home by then. */
  timeoutMs: number | null;
  /** Console on the terminal (else only in the log). */
  terminal: boolean;
  /** Progress lines for the operator. */
  say(line: string): void;
  /** Aborted on Ctrl-C: everything is torn down. */
  signal: AbortSignal;
}

export interface VmSessionResult {
  /** Seconds from VM start to phone-home, or null when it never phoned home. */
  bootSeconds: number | null;
  imageId: string | null;
  /** Why the session ended. */
  ended: 'booted' | 'vm-exited' | 'interrupted' | 'timeout';
}

/**
 * `livery vm boot`: a private namespace and bridge, a throwaway livery serving DHCP, TFTP and
 * HTTP on that bridge only, the image published into it, the MAC registered, and a VM booted
 * from it with its console on the terminal. Everything is removed again however it ends.
 */
export async function runVmSession(o: VmSessionOptions): Promise<VmSessionResult> {
  const work = mkdtempSync(join(tmpdir(), 'livery-vm-'));
  let net: PrivateNetwork | null = null;
  let livery: LabLivery | null = null;
  let vm: Vm | null = null;
  // A crash or process.exit() skips `finally`: the namespace (and everything running in it) and
  // the temp dir still go, synchronously.
  const lastResort = () => {
    net?.remove();
    rmSync(work, { recursive: true, force: true });
  };
  process.once('exit', lastResort);
  try {
    const accel = o.accel === 'auto' ? await chooseAccel(o.firmware) : { accel: o.accel, reason: 'as asked (--accel)' };
    o.say(`accelerator: ${accel.accel} (${accel.reason})`);
    o.signal.throwIfAborted();
    net = createPrivateNetwork({ tag: 'vm' });
    livery = await startLabLivery({ net, dataDir: join(work, 'livery'), cli: o.cli });
    o.say(`livery serves ${livery.url} in network namespace ${net.ns} (bridge ${net.bridge}, ${net.cidr}); data in ${work}`);
    const image = await livery.cli<{ id: string; name: string; version: string }>(['image', 'publish', o.bundle]);
    await livery.cli(['machine', 'add', '--mac', o.mac, '--hostname', o.hostname, '--image-id', image.id]);
    o.say(`booting ${image.name} ${image.version} (${image.id}) on ${o.hostname} ${o.mac}, ${o.firmware}${o.nicRom ? '' : ' via the firmware PXE client and TFTP'}`);
    o.signal.throwIfAborted();
    vm = startVm({ net, dir: join(work, 'vm'), mac: o.mac, firmware: o.firmware, accel: accel.accel, nicRom: o.nicRom, memoryMiB: o.memoryMiB, cpus: o.cpus, terminal: o.terminal, exitOnReboot: false });
    return await watch(vm, o);
  } catch (err) {
    if (o.signal.aborted) return { bootSeconds: null, imageId: null, ended: 'interrupted' };
    throw err;
  } finally {
    await vm?.stop();
    await livery?.stop();
    lastResort();
    process.off('exit', lastResort);
  }
}

/** Follows the console until the image phones home, then (unless exitOnBoot) until the VM ends. */
async function watch(vm: Vm, o: VmSessionOptions): Promise<VmSessionResult> {
  const deadline = o.timeoutMs === null ? Infinity : vm.startedAt + o.timeoutMs;
  let booted: { seconds: number; imageId: string } | null = null;
  const result = (ended: VmSessionResult['ended']): VmSessionResult => ({ bootSeconds: booted?.seconds ?? null, imageId: booted?.imageId ?? null, ended });
  for (;;) {
    if (!booted) {
      const m = PHONE_HOME.exec(vm.console.plain());
      if (m) {
        booted = { seconds: Math.round((Date.now() - vm.startedAt) / 1000), imageId: m[1]! };
        o.say(`booted image ${m[1]} as ${m[2]} in ${booted.seconds} s`);
        if (o.exitOnBoot) return result('booted');
      } else if (Date.now() > deadline) {
        o.say(`no phone-home within ${Math.round(o.timeoutMs! / 1000)} s; console tail:\n${vm.console.tail(20)}`);
        return result('timeout');
      }
    }
    if (o.signal.aborted) return result('interrupted');
    const gone = vm.stopped();
    if (gone) {
      o.say(gone);
      return result('vm-exited');
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

