import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A chassis behind ipmi_sim's `chassis_control` hook (OpenIPMI's extcmd protocol: the program
 * is run as `<prog> <mc> get <name>...` and prints `name:value` lines, or `<prog> <mc> set
 * <name> "<value>"...`). It keeps power and boot device in files of its directory and logs
 * every set: a machine that only holds state. The other chassis is a QEMU VM (see VmChassis).
 */
const CHASSIS = `#!/bin/sh
dir=$(dirname "$0")
op=$2
shift 2
case "$op" in
  get) for p in "$@"; do printf '%s:%s\\n' "$p" "$(cat "$dir/$p")"; done ;;
  set) while [ $# -ge 2 ]; do printf '%s' "$2" > "$dir/$1"; echo "$1 $2" >> "$dir/log"; shift 2; done ;;
esac
exit 0
`;

/**
 * The BMC's LAN channel as ipmi_sim's `lan_config_program` (ipmi_lan(5)): run as `<prog>
 * <device> get <parm>...`, it prints `parm:value` lines. The values are fixed when the BMC
 * starts (its listening address and a MAC of its own); sets are refused, as a test BMC's
 * network is the test's to choose. What `ipmitool lan print` shows, in-band or over the LAN.
 */
const lanControl = (ip: string, mac: string) => `#!/bin/sh
[ "$2" = get ] || { echo "this BMC's LAN settings are fixed"; exit 1; }
shift 2
for p in "$@"; do
  case "$p" in
    ip_addr) v=${ip} ;;
    ip_addr_src) v=static ;;
    mac_addr) v=${mac} ;;
    subnet_mask) v=255.255.255.0 ;;
    default_gw_ip_addr | backup_gw_ip_addr) v=0.0.0.0 ;;
    *) v=00:00:00:00:00:00 ;;
  esac
  printf '%s:%s\n' "$p" "$v"
done
`;

/** A locally administered MAC for the BMC at `address`: 02:00 and the address's four octets. */
export const bmcMacOf = (address: string) => ['02', '00', ...address.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');

/** Where ipmi_sim runs: a network namespace (test/helpers/netns.ts's hosts, src/lab/vm's Namespace). */
export interface SimHost {
  exec(cmd: string, args: string[]): string;
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
}

/**
 * A QEMU VM as the chassis, through ipmi_sim's own VM support (OpenIPMI lanserv, ipmi_lan(5)):
 * "chassis power on" runs `startcmd` (a script that execs QEMU), QEMU connects back to the
 * serial VM interface on 127.0.0.1:`vmPort` (ipmi-bmc-extern), and power off / cycle ask the VM
 * over that connection to stop, with SIGTERM then SIGKILL as the fallback. The power state is
 * whether the process lives. This interface keeps no boot device: ipmi_sim answers a
 * `chassis bootdev` with "invalid data field" (the VM boots from its NIC anyway). Without
 * `startcmd` the VM is started by the test (a machine someone switched on by hand) and only
 * connects: its guest sees the BMC in-band, and the BMC does not power it.
 */
export interface VmChassis {
  startcmd?: string;
  vmPort: number;
}

export interface IpmiSim {
  address: string;
  /** Its LAN channel's MAC, as `ipmitool lan print` shows it (bmcMacOf(address)). */
  mac: string;
  port: number;
  username: string;
  password: string;
  /** The simulator's process (`ip netns exec` execs into it), to stop and continue it. */
  pid: number;
  /** The chassis as the simulator holds it: power 0/1, next boot device, every set made (the state-file chassis only). */
  chassis(): { power: string; boot: string; log: string[] };
  stop(): Promise<void>;
}

/**
 * Starts ipmi_sim in `host` on `address`, with a throwaway config and state dir in `dir`; the
 * chassis is a state-file script there, or the VM `vm` describes.
 */
export async function startIpmiSim(
  host: SimHost,
  address: string,
  dir: string,
  creds = { username: 'admin', password: 'sim-secret' },
  vm?: VmChassis,
): Promise<IpmiSim> {
  const port = 623;
  mkdirSync(join(dir, 'state'), { recursive: true });
  mkdirSync(join(dir, 'chassis'), { recursive: true });
  const chassis = join(dir, 'chassis', 'control');
  writeFileSync(chassis, CHASSIS);
  chmodSync(chassis, 0o755);
  writeFileSync(join(dir, 'chassis', 'power'), '0');
  writeFileSync(join(dir, 'chassis', 'boot'), 'none');
  writeFileSync(join(dir, 'chassis', 'reset'), '0');
  writeFileSync(join(dir, 'chassis', 'log'), '');
  const mac = bmcMacOf(address);
  const lan = join(dir, 'lan-control');
  writeFileSync(lan, lanControl(address, mac));
  chmodSync(lan, 0o755);
  const auths = 'none md2 md5 straight';
  writeFileSync(
    join(dir, 'lan.conf'),
    [
      'name "livery-test"',
      'set_working_mc 0x20',
      '  startlan 1',
      `    addr ${address} ${port}`,
      '    priv_limit admin',
      ...['callback', 'user', 'operator', 'admin'].map((p) => `    allowed_auths_${p} ${auths}`),
      '    guid a123456789abcdefa123456789abcdef',
      `    lan_config_program "${lan} lan0"`,
      '  endlan',
      ...(vm
        ? [
            `  serial 15 127.0.0.1 ${vm.vmPort} codec VM`,
            // Seconds for the VM to stop when asked before SIGTERM, then before SIGKILL.
            ...(vm.startcmd ? [`  startcmd "${vm.startcmd}"`, '  startnow false', '  poweroff_wait 10', '  kill_wait 5'] : []),
          ]
        : [`  chassis_control "${chassis} 0x20"`]),
      `  user 2 true "${creds.username}" "${creds.password}" admin 10 ${auths}`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'sim.emu'), ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02', 'mc_enable 0x20', ''].join('\n'));
  const proc: ChildProcess = host.spawn('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-s', join(dir, 'state'), '-n'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const ended = new Promise<void>((r) => proc.once('exit', () => r()));
  // Ready once its UDP port is bound inside the namespace.
  const deadline = Date.now() + 10_000;
  while (!host.exec('ss', ['-Hlun', `sport = :${port}`]).includes(`${address}:${port}`)) {
    if (proc.exitCode !== null) throw new Error(`ipmi_sim exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`ipmi_sim did not listen on ${address}:${port} in 10 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const file = (name: string) => readFileSync(join(dir, 'chassis', name), 'utf8');
  return {
    address,
    mac,
    port,
    ...creds,
    pid: proc.pid!,
    chassis: () => {
      if (vm) throw new Error('this BMC drives a VM: its power is whether the VM runs');
      return { power: file('power'), boot: file('boot'), log: existsSync(join(dir, 'chassis', 'log')) ? file('log').split('\n').filter(Boolean) : [] };
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await Promise.race([ended, new Promise((r) => setTimeout(r, 5000))]);
    },
  };
}
