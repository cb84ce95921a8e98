// Regenerates the real-client fixtures in test/fixtures/dhcp/*.bin.
//
// Each capture runs one real DHCP client (Debian's dhclient or udhcpc, or a QEMU
// guest's PXE firmware) inside throw-away network namespaces, with a tiny Node UDP
// listener on 0.0.0.0:67 on the far side of a veth pair (or of QEMU's tap) that
// writes the first BOOTP request it sees to the fixture file and exits. Nothing
// touches the host's real interfaces: the namespaces are created here and deleted
// in `finally`, and every process is killed by its own pid.
//
// Needs root. Usage:  npx vite-node test/helpers/capture-dhcp.ts [fixture-name ...]
// (no names = all of them). The tests read the committed .bin files, not this, and
// assert the values pinned below (MAC, UUID, host names, user classes).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/dhcp/', import.meta.url));

// The client identity is pinned so the fixtures are reproducible and the tests can
// assert on it: the MAC of the veth end or QEMU NIC, and the UUID QEMU puts into
// SMBIOS, which the PXE ROMs send as option 97.
const CLIENT_MAC = '52:54:00:6c:69:76';
const GUEST_UUID = '6c697665-7279-4000-8000-0123456789ab';

type Topology = 'veth' | 'tap';

interface CaptureSpec {
  /** Which side the client lives on: a second namespace behind a veth, or QEMU on a tap. */
  topology: Topology;
  /** argv run inside the client namespace (veth) or the single namespace (tap). */
  command: (tmp: string, clientIf: string) => string[];
  /** Upper bound on how long the client may take to send its first DISCOVER. */
  timeoutMs: number;
}

// RFC 3004 form: each class is <len><bytes>, here as the hex udhcpc's -x expects.
const UDHCPC_USER_CLASSES = ['livery', 'diskless'];
const rfc3004Hex = (classes: string[]): string =>
  classes.map((c) => Buffer.concat([Buffer.from([c.length]), Buffer.from(c)]).toString('hex')).join('');

const qemuBase = (tap: string, romfile: string | undefined): string[] => [
  'qemu-system-x86_64', '-accel', 'tcg', '-m', '512', '-nographic', '-nodefaults',
  '-serial', 'none', '-monitor', 'none', '-boot', 'n', '-uuid', GUEST_UUID,
  '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
  '-device', `virtio-net-pci,netdev=n0,mac=${CLIENT_MAC}${romfile === undefined ? '' : `,romfile=${romfile}`}`,
];

const ovmfDrives = (tmp: string): string[] => {
  // OVMF writes to its variable store, so every run gets a private copy.
  const vars = join(tmp, 'OVMF_VARS_4M.fd');
  copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
  return [
    '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    '-drive', `if=pflash,format=raw,file=${vars}`,
  ];
};

const CAPTURES: Record<string, CaptureSpec> = {
  // Stock Debian dhclient and /etc/dhcp/dhclient.conf; a private UTS namespace pins
  // the host-name it sends (the stock config sends gethostname()).
  'dhclient-discover': {
    topology: 'veth',
    timeoutMs: 20_000,
    command: (tmp, ifname) => [
      'unshare', '--uts', 'sh', '-c',
      'hostname livery-dhclient && exec dhclient -d -1 -v -cf /etc/dhcp/dhclient.conf ' +
        `-lf ${join(tmp, 'leases')} -pf ${join(tmp, 'pid')} -sf /bin/true ${ifname}`,
    ],
  },
  // Busybox udhcpc with its default vendor class and client id, plus a host name and
  // an RFC 3004 encoded user class so the fixtures cover that encoding too.
  'udhcpc-discover': {
    topology: 'veth',
    timeoutMs: 20_000,
    command: (_tmp, ifname) => [
      'udhcpc', '-f', '-n', '-t', '2', '-T', '2', '-i', ifname, '-s', '/bin/true',
      '-x', 'hostname:livery-udhcpc', '-x', `0x4d:${rfc3004Hex(UDHCPC_USER_CLASSES)}`,
    ],
  },
  // SeaBIOS + the iPXE option ROM QEMU ships for virtio-net (legacy BIOS PXE, arch 0).
  'ipxe-bios-discover': {
    topology: 'tap',
    timeoutMs: 60_000,
    command: (_tmp, tap) => qemuBase(tap, undefined),
  },
  // OVMF with an empty romfile: EDK2's own UEFI PXE client (arch 7), no iPXE involved.
  'ovmf-pxe-discover': {
    topology: 'tap',
    timeoutMs: 60_000,
    command: (tmp, tap) => [...qemuBase(tap, ''), ...ovmfDrives(tmp)],
  },
  // OVMF with QEMU's iPXE EFI option ROM driving the NIC (iPXE as a UEFI client).
  'ipxe-efi-discover': {
    topology: 'tap',
    timeoutMs: 60_000,
    command: (tmp, tap) => [...qemuBase(tap, undefined), ...ovmfDrives(tmp)],
  },
};

// Runs in the server namespace: first BOOTP request on :67 goes to $CAPTURE_OUT.
const LISTENER_JS = `
const dgram = require('node:dgram');
const fs = require('node:fs');
const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
socket.on('message', (msg) => {
  if (msg[0] !== 1) return; // only BOOTREQUEST
  fs.writeFileSync(process.env.CAPTURE_OUT, msg);
  process.exit(0);
});
socket.bind(67, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;

function run(argv: string[]): void {
  const [cmd, ...args] = argv as [string, ...string[]];
  const result = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: 10_000 });
  if (result.status !== 0) throw new Error(`command failed (${result.status ?? result.signal}): ${argv.join(' ')}`);
}

function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${line}"`)), timeoutMs);
    let seen = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`listener exited (${code}) before "${line}"`));
    });
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(true);
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return; // it exited between the check and the signal
  }
  if (!(await waitForExit(child, 5_000))) process.kill(child.pid, 'SIGKILL');
  await waitForExit(child, 5_000);
}

/** Captures one fixture; resolves to the path written. */
async function capture(name: string): Promise<string> {
  const spec = CAPTURES[name];
  if (spec === undefined) throw new Error(`unknown capture "${name}" (known: ${Object.keys(CAPTURES).join(', ')})`);
  const out = join(FIXTURE_DIR, `${name}.bin`);
  const tmp = mkdtempSync(join(tmpdir(), 'livery-capture-'));
  const serverNs = `livery-cap-srv-${process.pid}`;
  const clientNs = `livery-cap-cli-${process.pid}`;
  const namespaces: string[] = [];
  let listener: ChildProcess | undefined;
  let client: ChildProcess | undefined;
  const captured = join(tmp, 'packet.bin');
  try {
    run(['ip', 'netns', 'add', serverNs]);
    namespaces.push(serverNs);
    run(['ip', '-n', serverNs, 'link', 'set', 'lo', 'up']);
    let clientPrefix: string[];
    let clientIf: string;
    if (spec.topology === 'veth') {
      run(['ip', 'netns', 'add', clientNs]);
      namespaces.push(clientNs);
      run(['ip', '-n', clientNs, 'link', 'add', 'cap0', 'address', CLIENT_MAC, 'type', 'veth', 'peer', 'name', 'cap1', 'netns', serverNs]);
      run(['ip', '-n', clientNs, 'link', 'set', 'cap0', 'up']);
      run(['ip', '-n', serverNs, 'link', 'set', 'cap1', 'up']);
      run(['ip', '-n', serverNs, 'addr', 'add', '192.0.2.1/24', 'dev', 'cap1']);
      clientPrefix = ['ip', 'netns', 'exec', clientNs];
      clientIf = 'cap0';
    } else {
      run(['ip', '-n', serverNs, 'tuntap', 'add', 'dev', 'captap0', 'mode', 'tap']);
      run(['ip', '-n', serverNs, 'link', 'set', 'captap0', 'up']);
      run(['ip', '-n', serverNs, 'addr', 'add', '192.0.2.1/24', 'dev', 'captap0']);
      clientPrefix = ['ip', 'netns', 'exec', serverNs];
      clientIf = 'captap0';
    }

    listener = spawn('ip', ['netns', 'exec', serverNs, process.execPath, '-e', LISTENER_JS], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, CAPTURE_OUT: captured },
    });
    await waitForLine(listener, 'ready', 10_000);

    const [cmd, ...args] = [...clientPrefix, ...spec.command(tmp, clientIf)] as [string, ...string[]];
    client = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const gotPacket = await waitForExit(listener, spec.timeoutMs);
    if (!gotPacket || !existsSync(captured)) throw new Error(`${name}: no DHCP packet within ${spec.timeoutMs} ms`);
    copyFileSync(captured, out);
    return out;
  } finally {
    await stop(client);
    await stop(listener);
    for (const ns of namespaces.reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'inherit', timeout: 10_000 });
    rmSync(tmp, { recursive: true, force: true });
  }
}

const requested = process.argv.slice(2);
for (const name of requested.length > 0 ? requested : Object.keys(CAPTURES)) {
  const started = Date.now();
  const path = await capture(name);
  console.log(`${name}: wrote ${path} in ${Date.now() - started} ms`);
}
