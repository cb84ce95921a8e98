import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { QEMU, qemuArgs, type Accel, type PrivateNetwork, type QemuSpec } from '../../../src/lab/vm/index.js';
import { startIpmiSim, type IpmiSim } from '../../helpers/ipmi-sim.js';
import { QemuPowerBackend } from '../../helpers/qemu-power.js';
import { startRedfishBmc, type RedfishBmc } from '../../helpers/redfish-bmc.js';
import { ARTIFACTS, type BootLab } from './boot-lab.js';

/** A diskless VM whose only power switch is its own BMC, inside the lab's namespace. */
export interface BmcVm {
  mac: string;
  hostname: string;
  /** The `livery machine add` options for its BMC (the password is in a file). */
  bmcOptions: string[];
  /** Every boot's console, appended: QEMU is started anew at each power-on. */
  console(): string;
  /** Console and QEMU's messages into ARTIFACTS (for a failed test). */
  keep(tag: string): void;
  /** The BMC, then the VM if it still runs. */
  stop(): Promise<void>;
}

export interface BmcVmOptions {
  lab: BootLab;
  dir: string;
  mac: string;
  hostname: string;
  /** The BMC's own address in the lab network (added to the bridge). */
  bmcAddress: string;
  accel: Accel;
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
const FORWARDER = resolve(import.meta.dirname, '../../helpers/socket-forward.mjs');

/** The BMC's own address in the lab network: added to the bridge, where livery reaches it. */
function addBmcAddress(net: PrivateNetwork, address: string): void {
  net.exec('ip', ['addr', 'add', `${address}/32`, 'dev', net.bridge]);
}

/** What both kinds share: the BMC's address, a tap, QEMU's arguments, the files kept on failure. */
function prepare(o: BmcVmOptions, bmc?: QemuSpec['bmc']) {
  const net: PrivateNetwork = o.lab.net;
  mkdirSync(o.dir, { recursive: true });
  addBmcAddress(net, o.bmcAddress);
  const tap = net.addTap();
  const consolePath = join(o.dir, 'console.log');
  const qemuLog = join(o.dir, 'qemu.log');
  writeFileSync(consolePath, '');
  // BIOS with the NIC's iPXE ROM; one vCPU each, as several boot at once on a small machine.
  // A reboot stays a reboot: only the BMC switches this machine off.
  const args = qemuArgs({ firmware: 'bios', accel: o.accel, memoryMiB: 1024, cpus: 1, mac: o.mac, tap, nicRom: true, console: { file: consolePath, append: true }, exitOnReboot: false, bmc });
  const password = `bmc-${o.hostname}`;
  const passwordFile = join(o.dir, 'bmc-password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
  return {
    net,
    tap,
    args,
    qemuLog,
    password,
    passwordFile,
    read,
    console: () => read(consolePath),
    keep(tag: string) {
      mkdirSync(ARTIFACTS, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      if (existsSync(consolePath)) copyFileSync(consolePath, join(ARTIFACTS, `${stamp}-${tag}-${o.hostname}.console.log`));
      writeFileSync(join(ARTIFACTS, `${stamp}-${tag}-${o.hostname}.qemu.log`), read(qemuLog));
    },
  };
}

/**
 * A machine behind Debian's ipmi_sim, whose startcmd is a script that execs QEMU with the BMC on
 * a KCS interface (ipmi-bmc-extern back to ipmi_sim). Nothing runs until a "chassis power on"
 * reaches the BMC over the lab network; "power off" and "cycle" stop that QEMU through the link.
 */
export async function startIpmiVm(o: BmcVmOptions & { vmPort: number }): Promise<BmcVm> {
  const p = prepare(o, { host: '127.0.0.1', port: o.vmPort });
  const pidFile = join(o.dir, 'qemu.pid');
  const start = join(o.dir, 'start-vm.sh');
  writeFileSync(start, `#!/bin/sh\necho $$ > ${shellQuote(pidFile)}\nexec ${[QEMU, ...p.args].map(shellQuote).join(' ')} 2>>${shellQuote(p.qemuLog)}\n`);
  chmodSync(start, 0o755);
  const sim = await startIpmiSim(p.net, o.bmcAddress, join(o.dir, 'bmc'), { username: 'admin', password: p.password }, { startcmd: start, vmPort: o.vmPort });
  return {
    mac: o.mac,
    hostname: o.hostname,
    bmcOptions: ['--bmc', `ipmi://admin@${o.bmcAddress}`, '--bmc-password-file', p.passwordFile],
    console: p.console,
    keep: p.keep,
    async stop() {
      await sim.stop();
      // Only a pid that still runs inside this namespace is the VM's (a stale one may be anyone's).
      const pid = p.read(pidFile).trim();
      if (pid && execFileSync('ip', ['netns', 'pids', p.net.ns], { encoding: 'utf8' }).split(/\s+/).includes(pid)) process.kill(Number(pid), 'SIGKILL');
      p.net.removeTap(p.tap);
    },
  };
}

/** An IPMI BMC on its own, for a VM the test boots itself (BootLab.boot with `machine.bmc`). */
export interface BoardBmc {
  sim: IpmiSim;
  /** QEMU's `bmc` option: the guest sees this BMC in-band (KCS), as a server's OS does. */
  qemu: NonNullable<QemuSpec['bmc']>;
}

/**
 * The BMC of a machine that is already on (someone switched it on, as an unknown machine is
 * before livery knows it): ipmi_sim in the lab's namespace on `bmcAddress`, its LAN channel
 * reporting that address and its own MAC, its VM interface waiting for the guest's QEMU. It
 * powers nothing; stop it after the VM.
 */
export async function startBoardBmc(o: { lab: BootLab; dir: string; bmcAddress: string; vmPort: number }): Promise<BoardBmc> {
  addBmcAddress(o.lab.net, o.bmcAddress);
  const sim = await startIpmiSim(o.lab.net, o.bmcAddress, o.dir, undefined, { vmPort: o.vmPort });
  return { sim, qemu: { host: '127.0.0.1', port: o.vmPort } };
}

export interface RedfishVm extends BmcVm {
  bmc: RedfishBmc;
  backend: QemuPowerBackend;
}

/**
 * A machine behind the test Redfish BMC, which drives its QEMU through QMP (QemuPowerBackend).
 * The BMC serves HTTPS on a UNIX socket of the test process; a forwarder in the lab namespace
 * puts it on `bmcAddress`:443, where livery reaches it. Livery pins its certificate.
 */
export async function startRedfishVm(o: BmcVmOptions): Promise<RedfishVm> {
  const p = prepare(o);
  const qmpSocket = join(o.dir, 'qmp.sock');
  const backend = new QemuPowerBackend(() => {
    const log = openSync(p.qemuLog, 'a');
    try {
      return p.net.spawn(QEMU, [...p.args, '-qmp', `unix:${qmpSocket},server=on,wait=off`], { stdio: ['ignore', 'ignore', log] });
    } finally {
      closeSync(log);
    }
  }, qmpSocket);
  const bmcSocket = join(o.dir, 'redfish.sock');
  const bmc = await startRedfishBmc(o.dir, backend, { username: 'root', password: p.password }, { socketPath: bmcSocket });
  await o.lab.startService(`redfish-forward-${o.hostname}`, p.net, process.execPath, [FORWARDER, `${o.bmcAddress}:443`, bmcSocket], 'listening');
  return {
    mac: o.mac,
    hostname: o.hostname,
    bmcOptions: ['--bmc', `redfish://root@${o.bmcAddress}`, '--bmc-password-file', p.passwordFile, '--bmc-fingerprint', bmc.fingerprint],
    bmc,
    backend,
    console: p.console,
    keep: p.keep,
    async stop() {
      await backend.stop();
      await bmc.close();
      p.net.removeTap(p.tap);
    },
  };
}
