import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import type { NsTestServer } from './ns-server.js';

/** What livery's DHCP names for a BIOS PXE ROM by default (Debian's ipxe package). */
const BIOS_LOADER = '/usr/lib/ipxe/undionly.kpxe';

/**
 * A BIOS machine's whole network boot from the client namespace, its NIC given `mac`, each step
 * by a real client: udhcpc as the PXE ROM (vendor class PXEClient, arch 0), curl fetching the
 * loader the offer named over TFTP, udhcpc as iPXE (user class iPXE), then curl for the script
 * the offer named, the kernel, initrd and rootfs, and the agent's phone-home.
 */
export async function pxeBoot(s: NsTestServer, dir: string, mac: string): Promise<void> {
  const { net, address } = s;
  mkdirSync(dir, { recursive: true });
  const inClient = (cmd: string, args: string[]) => promisify(execFile)('ip', ['netns', 'exec', net.client, cmd, ...args], { timeout: 60_000 }).then((r) => r.stdout);
  net.exec(net.client, 'ip', ['link', 'set', 'dev', net.clientIf, 'address', mac]);
  const leases = join(dir, 'udhcpc.out');
  const hook = join(dir, 'udhcpc.sh');
  writeFileSync(hook, `#!/bin/sh\n[ "$1" = bound ] || exit 0\nip addr replace "$ip/$mask" dev "$interface"\necho "$ip|$siaddr|$boot_file|$bootfile" > ${leases}\n`);
  chmodSync(hook, 0o755);
  const dhcp = async (...extra: string[]) => {
    await inClient('udhcpc', ['-f', '-q', '-n', '-t', '5', '-T', '1', '-i', net.clientIf, '-s', hook, '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', ...extra]);
    const [ip, siaddr, file, bootfile] = readFileSync(leases, 'utf8').trim().split('|');
    return { ip: ip!, siaddr: siaddr!, file: bootfile || file! };
  };
  const rom = await dhcp();
  expect(rom).toMatchObject({ siaddr: address, file: 'undionly.kpxe' });
  const loader = join(dir, 'loader');
  await inClient('curl', ['-sS', '--max-time', '20', '-o', loader, `tftp://${rom.siaddr}/${rom.file}`]);
  expect(statSync(loader).size).toBe(statSync(BIOS_LOADER).size);
  const ipxe = await dhcp('-x', '0x4d:69505845');
  expect(ipxe.file).toBe(`http://${address}:8080/boot/${mac}.ipxe`);
  const script = await inClient('curl', ['-sSf', '--max-time', '20', ipxe.file]);
  const imageId = /livery\.image=(\S+)/.exec(script)![1]!;
  for (const re of [/^kernel --name \S+ (\S+)/m, /^initrd --name \S+ (\S+)/m, /livery\.rootfs=(\S+)/]) {
    await inClient('curl', ['-sSf', '--max-time', '30', '-o', '/dev/null', re.exec(script)![1]!]);
  }
  await inClient('curl', ['-sSf', '--max-time', '20', '-H', 'content-type: application/json', '-d', JSON.stringify({ imageId }), `http://${address}:8080/v1/machines/${mac}/booted`]);
}

