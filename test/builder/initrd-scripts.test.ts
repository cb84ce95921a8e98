import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The initramfs scripts run under busybox; these tests run them under the same busybox
 * (Debian's busybox-static) on the build machine. The udhcpc hook changes addresses and
 * routes, so it runs inside a network namespace and a mount namespace this test creates
 * (a veth pair, a private /etc and /run) and removes even on failure.
 */
const ASSETS = resolve('src/builder/assets');
const BUSYBOX = '/bin/busybox';
const scratch = mkdtempSync(join(tmpdir(), 'livery-initrd-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('initramfs and agent scripts parse', () => {
  it.each(['init.sh', 'udhcpc.sh', 'cmdline.sh'])('busybox sh -n %s', (name) => {
    execFileSync(BUSYBOX, ['sh', '-n', join(ASSETS, name)], { stdio: 'pipe' });
  });

  it('sh -n livery-agent.sh (dash, the image /bin/sh)', () => {
    execFileSync('dash', ['-n', join(ASSETS, 'livery-agent.sh')], { stdio: 'pipe' });
  });

  it('init reads BOOTIF, livery.rootfs and livery.rootfs.sha256 with cmdline_value and refuses to boot without a checksum', () => {
    const init = execFileSync('cat', [join(ASSETS, 'init.sh')], { encoding: 'utf8' });
    expect(init).toContain('\n. /lib/livery/cmdline.sh\n');
    for (const key of ['BOOTIF', 'livery.rootfs', 'livery.rootfs.sha256']) expect(init).toContain(`$(cmdline_value ${key} /proc/cmdline`);
    expect(init).toContain('refusing to boot an unverified rootfs');
    expect(init).toMatch(/exec switch_root \/newroot \/sbin\/init\n$/);
  });

  /** What busybox sh makes of cmdline.sh's cmdline_value for each name, on this command line. */
  function values(cmdline: string, names: string[]): string[] {
    const file = join(scratch, 'cmdline');
    writeFileSync(file, `${cmdline}\n`);
    const script = `. "$1"; shift; f=$1; shift; for n in "$@"; do cmdline_value "$n" "$f" || echo "(none)"; done`;
    return execFileSync(BUSYBOX, ['sh', '-c', script, 'sh', join(ASSETS, 'cmdline.sh'), file, ...names], { encoding: 'utf8' }).trimEnd().split('\n');
  }

  it("cmdline_value takes livery's own value, the first, over copies that user arguments append", () => {
    const livery = 'BOOT_IMAGE=vmlinuz initrd=initrd.img BOOTIF=01-52-54-00-aa-00-01 livery.rootfs=http://10.0.0.1/r?mac=x livery.rootfs.sha256=AB12';
    const appended = 'quiet livery.rootfs=http://evil.example/r livery.rootfs.sha256=ffff BOOTIF=01-02-00-00-00-00-66 *';
    expect(values(`${livery} ${appended}`, ['livery.rootfs', 'livery.rootfs.sha256', 'BOOTIF', 'livery.server'])).toEqual([
      'http://10.0.0.1/r?mac=x',
      'AB12',
      '01-52-54-00-aa-00-01',
      '(none)',
    ]);
    // A name is matched whole: livery.rootfs is not read from livery.rootfs.sha256=, nor from Xlivery.rootfs=.
    expect(values('Xlivery.rootfs=a livery.rootfs.sha256=b', ['livery.rootfs'])).toEqual(['(none)']);
  });
});

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('udhcpc hook (needs root for network and mount namespaces)', () => {
  it('applies the lease, writes resolv.conf and net.env with network-supplied values sanitised, and deconfigures', () => {
    const applets = join(scratch, 'bin');
    execFileSync('mkdir', ['-p', applets]);
    for (const applet of ['sh', 'ip', 'tr', 'cat', 'printf', 'echo']) symlinkSync(BUSYBOX, join(applets, applet));
    const hook = join(ASSETS, 'udhcpc.sh');
    const script = [
      'set -e',
      'mount -t tmpfs tmpfs /etc',
      'mount -t tmpfs tmpfs /run',
      'mkdir -p /run/livery',
      // A veth pair: the kernel here has no dummy driver; the peer end stays unused.
      'ip link add d0 type veth peer name d1',
      'ip link set d1 up',
      'ip link set d0 up',
      `export PATH=${applets}`,
      `interface=d0 ip=192.0.2.10 mask=24 router='192.0.2.1 192.0.2.2' dns='192.0.2.53 2001:db8::53' domain='lab.example;rm -rf /' sh ${hook} bound`,
      'echo "--- addr"; ip -4 -o addr show dev d0',
      'echo "--- route"; ip route show default',
      'echo "--- resolv"; cat /etc/resolv.conf',
      'echo "--- env"; cat /run/livery/net.env',
      `interface=d0 sh ${hook} deconfig`,
      'echo "--- after deconfig"; ip -4 -o addr show dev d0',
    ].join('\n');
    const ns = `livery-builder-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    let out: string;
    try {
      out = execFileSync('ip', ['netns', 'exec', ns, 'unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
    // A section's text runs up to the next marker, without its final newline.
    const section = (name: string) => out.split(`--- ${name}\n`)[1]!.split('\n---')[0]!;
    expect(section('addr')).toMatch(/d0\s+inet 192\.0\.2\.10\/24 /);
    expect(section('route')).toMatch(/^default via 192\.0\.2\.1 dev d0/);
    expect(section('resolv')).toBe('search lab.examplerm-rf\nnameserver 192.0.2.53\nnameserver 2001:db8::53');
    expect(section('env')).toBe("interface='d0'\nip='192.0.2.10'\nprefix='24'\nrouter='192.0.2.1'\ndns='192.0.2.53 2001:db8::53'\ndomain='lab.examplerm-rf'");
    expect(out.split('--- after deconfig\n')[1]).not.toContain('192.0.2.10');
  });
});
