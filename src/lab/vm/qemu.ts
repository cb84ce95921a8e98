/**
 * QEMU command lines for a diskless machine that boots from its one NIC. Pure: the same spec
 * always gives the same arguments, so every rule here is tested without starting QEMU.
 */

export const QEMU = 'qemu-system-x86_64';

/** Debian's OVMF (package ovmf): firmware code, and the template of its variable store. */
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS_TEMPLATE = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/**
 * OVMF built with Secure Boot, and a variable store with Microsoft's keys enrolled and Secure
 * Boot on: it runs only EFI binaries signed by a key in db (Microsoft's UEFI CA signs shim).
 */
export const OVMF_CODE_SECBOOT = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
export const OVMF_VARS_SECBOOT_TEMPLATE = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';

/** The variable store a UEFI VM starts from. */
export const ovmfVarsTemplate = (secureBoot: boolean | undefined) => (secureBoot ? OVMF_VARS_SECBOOT_TEMPLATE : OVMF_VARS_TEMPLATE);

export type Firmware = 'bios' | 'uefi';
export type Accel = 'kvm' | 'tcg';

/**
 * Where the serial console goes: a file (appended to with `append`, so a machine that a BMC
 * powers on again keeps one log of all its boots), or the terminal (and a copy in a log file).
 */
export type ConsoleTarget = { file: string; append?: boolean } | { terminal: true; log: string };

export interface QemuSpec {
  firmware: Firmware;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  mac: string;
  /**
   * Tap device the NIC is attached to (it must exist in the namespace QEMU runs in), or null for
   * a NIC plugged into nothing (an empty QEMU hub): its ROM runs, but no frame goes anywhere.
   */
  tap: string | null;
  /**
   * true: the NIC carries QEMU's iPXE option ROM, which boots iPXE straight away. false: no ROM,
   * so the firmware's own PXE client boots and fetches its loader over TFTP, as real servers do.
   */
  nicRom: boolean;
  /** The machine's own copy of OVMF's variable store (UEFI only: firmware writes boot entries). */
  uefiVars?: string;
  /** UEFI only: OVMF's Secure Boot build, enforcing (uefiVars must come from OVMF_VARS_SECBOOT_TEMPLATE). */
  secureBoot?: boolean;
  console: ConsoleTarget;
  /** true: a guest reboot ends QEMU, so one run is one boot. */
  exitOnReboot: boolean;
  /** Raw image files attached as virtio disks (serials disk0, disk1, ...); the machine still boots from its NIC. */
  disks?: string[];
  /**
   * An external BMC (OpenIPMI's ipmi_sim, VM serial interface) listening on TCP here: the guest
   * sees it through a KCS system interface, and the BMC can power the VM off or reset it.
   */
  bmc?: { host: string; port: number };
}

export function qemuArgs(spec: QemuSpec): string[] {
  if (spec.firmware === 'uefi' && !spec.uefiVars) throw new Error('UEFI needs a writable copy of the OVMF variable store (uefiVars)');
  const args = [
    '-name', `livery-vm-${spec.mac}`,
    // The Secure Boot build keeps its variables in SMM-only flash, so the guest OS cannot rewrite them.
    '-machine', spec.firmware === 'uefi' ? (spec.secureBoot ? 'q35,smm=on' : 'q35') : 'pc',
    '-accel', spec.accel,
    '-m', String(spec.memoryMiB),
    '-smp', String(spec.cpus),
    // No default devices (VGA, disks, the user-mode NIC): only what is listed here exists.
    '-nodefaults',
    '-no-user-config',
    // -nographic, not -display none: only then does SeaBIOS copy its screen (and iPXE's) to serial.
    '-nographic',
    '-chardev', chardev(spec.console),
    '-serial', 'chardev:con',
    '-boot', 'n',
    '-netdev', spec.tap === null ? 'hubport,id=n0,hubid=0' : `tap,id=n0,ifname=${spec.tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=n0,mac=${spec.mac}${spec.nicRom ? '' : ',romfile='}`,
  ];
  if (spec.firmware === 'uefi') {
    if (spec.secureBoot) args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    const code = spec.secureBoot ? OVMF_CODE_SECBOOT : OVMF_CODE;
    args.push('-drive', `if=pflash,format=raw,readonly=on,file=${escape(code)}`, '-drive', `if=pflash,format=raw,file=${escape(spec.uefiVars!)}`);
  } else if (spec.secureBoot) throw new Error('Secure Boot needs UEFI firmware');
  for (const [i, file] of (spec.disks ?? []).entries()) {
    args.push('-drive', `if=none,id=disk${i},format=raw,file=${escape(file)}`, '-device', `virtio-blk-pci,drive=disk${i},serial=disk${i}`);
  }
  if (spec.bmc) {
    // reconnect: QEMU keeps trying while the BMC is not (yet) listening, as a BMC boots on its own.
    args.push(
      '-chardev', `socket,id=ipmi0,host=${spec.bmc.host},port=${spec.bmc.port},reconnect=10`,
      '-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0',
      '-device', 'isa-ipmi-kcs,bmc=bmc0',
    );
  }
  if (spec.exitOnReboot) args.push('-no-reboot');
  return args;
}

function chardev(target: ConsoleTarget): string {
  // signal=on keeps Ctrl-C a signal (to QEMU and to livery) instead of a key sent to the guest.
  return 'file' in target ? `file,id=con,path=${escape(target.file)}${target.append ? ',append=on' : ''}` : `stdio,id=con,signal=on,logfile=${escape(target.log)}`;
}

/** A comma inside a QEMU option value is written twice. */
const escape = (value: string) => value.replaceAll(',', ',,');
