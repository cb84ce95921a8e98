import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsoleLog, ConsoleTimeout, plainConsole } from '../../src/lab/vm/console.js';
import { OVMF_CODE, OVMF_CODE_SECBOOT, OVMF_VARS_SECBOOT_TEMPLATE, OVMF_VARS_TEMPLATE, ovmfVarsTemplate, QEMU, qemuArgs, type QemuSpec } from '../../src/lab/vm/qemu.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('livery-vm-');
afterAll(() => dir.cleanup());

const bios: QemuSpec = {
  firmware: 'bios',
  accel: 'tcg',
  memoryMiB: 1024,
  cpus: 2,
  mac: '52:54:00:12:34:56',
  tap: 'tap0',
  nicRom: true,
  console: { file: '/run/vm/console.log' },
  exitOnReboot: true,
};
const uefi: QemuSpec = { ...bios, firmware: 'uefi', nicRom: false, uefiVars: '/run/vm/OVMF_VARS.fd' };

/** The value following a flag, for each time the flag appears. */
const valuesOf = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));

describe('qemuArgs', () => {
  it('BIOS: i440fx, one virtio NIC with its iPXE ROM on the tap, serial console to a file, no default devices', () => {
    const args = qemuArgs(bios);
    expect(valuesOf(args, '-machine')).toEqual(['pc']);
    expect(valuesOf(args, '-accel')).toEqual(['tcg']);
    expect(valuesOf(args, '-netdev')).toEqual(['tap,id=n0,ifname=tap0,script=no,downscript=no']);
    expect(valuesOf(args, '-device')).toEqual(['virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56']);
    expect(valuesOf(args, '-chardev')).toEqual(['file,id=con,path=/run/vm/console.log']);
    expect(valuesOf(args, '-drive')).toEqual([]);
    for (const flag of ['-nodefaults', '-nographic', '-no-reboot']) expect(args).toContain(flag);
  });

  it('a VM behind an external BMC: ipmi_sim over a reconnecting socket, a KCS interface, one console log appended across power-ons', () => {
    const args = qemuArgs({ ...bios, exitOnReboot: false, console: { file: '/run/vm/console.log', append: true }, bmc: { host: '127.0.0.1', port: 9002 } });
    expect(valuesOf(args, '-chardev')).toEqual(['file,id=con,path=/run/vm/console.log,append=on', 'socket,id=ipmi0,host=127.0.0.1,port=9002,reconnect=10']);
    expect(valuesOf(args, '-device')).toEqual(['virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0', 'isa-ipmi-kcs,bmc=bmc0']);
    expect(args).not.toContain('-no-reboot');
  });

  it('UEFI: q35 with OVMF code read-only and its own variable store; no NIC ROM means the firmware PXE client', () => {
    const args = qemuArgs(uefi);
    expect(valuesOf(args, '-machine')).toEqual(['q35']);
    expect(valuesOf(args, '-drive')).toEqual([`if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, 'if=pflash,format=raw,file=/run/vm/OVMF_VARS.fd']);
    expect(valuesOf(args, '-device')).toEqual(['virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=']);
    expect(() => qemuArgs({ ...uefi, uefiVars: undefined })).toThrow(/variable store/);
  });

  it("UEFI with Secure Boot: OVMF's Secure Boot build on q35 with SMM, its flash writable only from SMM; BIOS has none", () => {
    const args = qemuArgs({ ...uefi, secureBoot: true });
    expect(valuesOf(args, '-machine')).toEqual(['q35,smm=on']);
    expect(valuesOf(args, '-global')).toEqual(['driver=cfi.pflash01,property=secure,value=on']);
    expect(valuesOf(args, '-drive')[0]).toBe(`if=pflash,format=raw,readonly=on,file=${OVMF_CODE_SECBOOT}`);
    expect(ovmfVarsTemplate(true)).toBe(OVMF_VARS_SECBOOT_TEMPLATE);
    expect(() => qemuArgs({ ...bios, secureBoot: true })).toThrow(/Secure Boot needs UEFI/);
  });

  it('terminal console keeps Ctrl-C a signal and copies to a log; commas in paths are doubled; reboots may continue', () => {
    const args = qemuArgs({ ...bios, console: { terminal: true, log: '/tmp/a,b/console.log' }, exitOnReboot: false });
    expect(valuesOf(args, '-chardev')).toEqual(['stdio,id=con,signal=on,logfile=/tmp/a,,b/console.log']);
    expect(args).not.toContain('-no-reboot');
  });

  it('disks are virtio drives with serials, added after the NIC; a comma in a path is doubled', () => {
    const args = qemuArgs({ ...bios, disks: ['/tmp/d0.raw', '/tmp/a,b/d1.raw'] });
    expect(valuesOf(args, '-drive')).toEqual(['if=none,id=disk0,format=raw,file=/tmp/d0.raw', 'if=none,id=disk1,format=raw,file=/tmp/a,,b/d1.raw']);
    expect(valuesOf(args, '-device').slice(1)).toEqual(['virtio-blk-pci,drive=disk0,serial=disk0', 'virtio-blk-pci,drive=disk1,serial=disk1']);
    expect(valuesOf(args, '-boot')).toEqual(['n']);
  });

  it('a NIC without a tap is plugged into an empty hub: it sends nothing anywhere', () => {
    expect(valuesOf(qemuArgs({ ...bios, tap: null }), '-netdev')).toEqual(['hubport,id=n0,hubid=0']);
  });

  it.each(['bios', 'uefi'] as const)('the real %s command line is accepted by QEMU', async (firmware) => {
    const vars = join(dir.path, `${firmware}-vars.fd`);
    copyFileSync(OVMF_VARS_TEMPLATE, vars);
    const args = qemuArgs({ ...(firmware === 'bios' ? bios : uefi), tap: null, uefiVars: vars, console: { file: join(dir.path, `${firmware}.log`) } });
    // -S: created but never run. A bad option makes QEMU exit at once; a good one leaves it waiting.
    const qemu = spawn(QEMU, [...args, '-S'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    qemu.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => qemu.once('exit', (code) => r(code)));
    const early = await Promise.race([exited, new Promise((r) => setTimeout(() => r('running'), 2000))]);
    qemu.kill('SIGKILL');
    await exited;
    expect(early, stderr).toBe('running');
  });
});

describe('serial console', () => {
  it('plain text: no escapes, CR/LF made LF, backspaced prompts erased', () => {
    const raw = '\x1bc\x1b[?7l\x1b[2J\x1b[0;1miPXE 1.0\x1b[0m -- Open Source\r\r\nPress Ctrl-B...' + '\b \b'.repeat(15) + 'net0: up\r\nDownloading...1%\rDownloading...2%\x1b[=3h';
    expect(plainConsole(raw)).toBe('iPXE 1.0 -- Open Source\nnet0: up\nDownloading...1%\nDownloading...2%');
  });

  it('waitFor follows a growing file, and fails with the tail when time runs out or the VM is gone', async () => {
    const log = new ConsoleLog(join(dir.path, 'growing.log'));
    expect(log.raw()).toBe('');
    writeFileSync(log.path, 'SeaBIOS\r\n');
    setTimeout(() => appendFileSync(log.path, 'livery-agent: booted image abc as node1\r\n'), 300);
    const m = await log.waitFor(/booted image (\S+) as (\S+)/, { timeoutMs: 5000, pollMs: 50 });
    expect([m[1], m[2]]).toEqual(['abc', 'node1']);

    await expect(log.waitFor(/never/, { timeoutMs: 200, pollMs: 50 })).rejects.toThrow(ConsoleTimeout);
    await expect(log.waitFor(/never/, { timeoutMs: 200, pollMs: 50 })).rejects.toThrow(/within 0 s; console tail:\nSeaBIOS\nlivery-agent/);
    await expect(log.waitFor(/never/, { timeoutMs: 60_000, pollMs: 50, stopped: () => 'QEMU exited with code 1' })).rejects.toThrow(/^QEMU exited with code 1 before/);
  });
});
