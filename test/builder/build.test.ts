import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { manifestProblems, type ImageManifest } from '../../src/catalog/manifest.js';
import { BuildError, buildImage, PreflightError, type BuildResult, type StepEvent } from '../../src/builder/index.js';
import { mountsUnder } from '../../src/builder/safe-remove.js';

/**
 * Real builds of images/minimal. The bootstrapped base is cached in a fixed folder so that
 * repeated runs on one machine are warm (the first run on a fresh machine bootstraps from the
 * Debian mirror apt is configured with, a few minutes).
 */
const CACHE = '/var/cache/livery/test-builder';
const MINIMAL = resolve('images/minimal/recipe');
const BUILD_TIMEOUT = 15 * 60_000;
const isRoot = process.getuid?.() === 0;

interface Entry {
  name: string;
  size: number;
  mode: number;
  sha256: string;
}

/** Reads a bundle as a stream: entry order, headers and sha256; copies chosen entries out. */
async function readBundle(path: string, copy: Record<string, string> = {}): Promise<{ entries: Entry[]; manifest: ImageManifest }> {
  const entries: Entry[] = [];
  let manifest: ImageManifest | undefined;
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    const sink = copy[header.name] ? createWriteStream(copy[header.name]!) : undefined;
    stream.on('data', (chunk: unknown) => {
      const d = chunk as Buffer;
      hash.update(d);
      if (header.name === 'manifest.json') chunks.push(d);
      sink?.write(d);
    });
    stream.on('end', () => {
      entries.push({ name: header.name, size: header.size ?? 0, mode: header.mode ?? 0, sha256: hash.digest('hex') });
      if (header.name === 'manifest.json') manifest = JSON.parse(Buffer.concat(chunks).toString()) as ImageManifest;
      if (sink) sink.end(next);
      else next();
    });
  });
  await pipeline(createReadStream(path), extract);
  return { entries, manifest: manifest! };
}

describe('builder preflight', () => {
  it('refuses to run without root and says why', async () => {
    // process.getuid is optional in Node's types (absent on Windows).
    const spy = vi.spyOn(process as { getuid(): number }, 'getuid').mockReturnValue(1000);
    try {
      await expect(buildImage({ recipePath: MINIMAL, outDir: tmpdir(), cacheDir: tmpdir() })).rejects.toThrow(PreflightError);
      await expect(buildImage({ recipePath: MINIMAL, outDir: tmpdir(), cacheDir: tmpdir() })).rejects.toThrow(/^building an image needs root: mmdebstrap installs packages as root/);
    } finally {
      spy.mockRestore();
    }
  });
});

describe.skipIf(!isRoot)('building images/minimal (needs root; skipped otherwise)', () => {
  const work = mkdtempSync(join(tmpdir(), 'livery-build-'));
  const out = join(work, 'out');
  const steps: StepEvent[] = [];
  let first: BuildResult;
  let bundle: { entries: Entry[]; manifest: ImageManifest };
  const rootfs = join(work, 'rootfs.squashfs');
  const initrd = join(work, 'initrd.img');

  beforeAll(async () => {
    first = await buildImage({ recipePath: MINIMAL, outDir: out, cacheDir: CACHE, onStep: (e) => steps.push(e) });
    bundle = await readBundle(first.bundlePath, { 'rootfs.squashfs': rootfs, 'initrd.img': initrd });
  }, BUILD_TIMEOUT);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes one bundle named after the recipe and an automatic date version, nothing half-written beside it', () => {
    expect(first.manifest.version).toMatch(/^\d{4}\.\d{2}\.\d{2}\.1$/);
    expect(first.bundlePath).toBe(join(out, `minimal-${first.manifest.version}.tar`));
    expect(readdirSync(out)).toEqual([`minimal-${first.manifest.version}.tar`]);
  });

  it('puts manifest.json first, then the artifacts at top level, mode 0644, matching the manifest', () => {
    const { entries, manifest } = bundle;
    expect(entries.map((e) => e.name)).toEqual(['manifest.json', 'vmlinuz', 'initrd.img', 'rootfs.squashfs']);
    for (const e of entries) expect(e.mode).toBe(0o644);
    expect(manifestProblems(manifest)).toEqual([]);
    expect(manifest).toEqual(first.manifest);
    for (const a of manifest.artifacts) {
      const e = entries.find((x) => x.name === a.name)!;
      expect([e.size, e.sha256]).toEqual([a.size, a.sha256]);
    }
    expect(manifest.artifacts.map((a) => [a.name, a.role])).toEqual([
      ['vmlinuz', 'kernel'],
      ['initrd.img', 'initrd'],
      ['rootfs.squashfs', 'rootfs'],
    ]);
  });

  it('records what the image is: os, arch, kernel args, flattened recipe, installed packages with versions', () => {
    const m = bundle.manifest;
    expect([m.name, m.os, m.arch, m.kernelArgs]).toEqual(['minimal', 'debian-bookworm', 'amd64', 'net.ifnames=0 panic=30']);
    expect(m.recipe).toBe(readFileSync(MINIMAL, 'utf8').replace(/\n$/, ''));
    const names = m.packages.map((p) => p.name);
    for (const p of ['systemd', 'systemd-sysv', 'curl', 'openssh-server', 'nftables', 'busybox-static', 'usr-is-merged']) expect(names).toContain(p);
    expect(names.some((n) => n.startsWith('linux-image-'))).toBe(true);
    // usrmerge and the perl it drags in are purged.
    expect(names).not.toContain('usrmerge');
    expect(names).not.toContain('perl');
    for (const p of m.packages) expect(p.version).toMatch(/^[0-9][A-Za-z0-9.+~:-]*$/);
  });

  it('meets the size targets: rootfs under 100 MB, initrd under 40 MB', () => {
    expect(statSync(rootfs).size).toBeLessThan(100 * 1024 * 1024);
    expect(statSync(initrd).size).toBeLessThan(40 * 1024 * 1024);
  });

  it('reports every step with elapsed times and keeps a build log', () => {
    const done = steps.filter((s) => s.state === 'done').map((s) => s.step);
    expect(done).toEqual(['bootstrap', 'mount-base', 'configure', 'post', 'inventory', 'kernel', 'initramfs', 'scrub', 'squashfs', 'bundle']);
    expect(steps.filter((s) => s.state === 'failed')).toEqual([]);
    expect(Object.keys(first.timings)).toEqual(done);
    const log = readFileSync(first.logPath, 'utf8');
    expect(log).toContain('==> squashfs');
    expect(log).toContain('$ mksquashfs ');
  });

  it('initrd holds /init, busybox, the udhcpc hook and the NIC, loop, squashfs and overlay modules', () => {
    const listing = execFileSync('sh', ['-c', 'zcat "$1" | cpio -t --quiet', 'sh', initrd], { encoding: 'utf8' }).split('\n');
    for (const f of ['init', 'lib/livery/cmdline.sh', 'bin/busybox', 'etc/livery-udhcpc', 'etc/livery-modules', 'dev/console']) expect(listing).toContain(f);
    const modules = listing.filter((f) => f.endsWith('.ko')).map((f) => f.split('/').at(-1));
    for (const m of ['virtio_net.ko', 'virtio_pci.ko', 'e1000.ko', 'e1000e.ko', 'igb.ko', 'ixgbe.ko', 'i40e.ko', 'bnxt_en.ko', 'mlx5_core.ko', 'squashfs.ko', 'overlay.ko', 'loop.ko']) {
      expect(modules).toContain(m);
    }
    // Dependencies resolved with modprobe come along (virtio_net needs net_failover).
    expect(modules).toContain('net_failover.ko');
  });

  it('rootfs mounts and holds the agent, the recipe files, overlay and firewall, and no machine identity', () => {
    const mnt = join(work, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', rootfs, mnt]);
    try {
      const at = (p: string) => join(mnt, p);
      expect(readFileSync(at('etc/systemd/system/livery-agent.service'), 'utf8')).toContain('ExecStart=/usr/lib/livery/livery-agent');
      expect(statSync(at('usr/lib/livery/livery-agent')).mode & 0o777).toBe(0o755);
      expect(statSync(at('usr/lib/livery/cmdline.sh')).mode & 0o777).toBe(0o644);
      expect(readlinkSync(at('etc/systemd/system/multi-user.target.wants/livery-agent.service'))).toBe('/etc/systemd/system/livery-agent.service');
      // Unit links are absolute inside the image, so they are read, not followed.
      expect(readlinkSync(at('etc/systemd/system/multi-user.target.wants/systemd-networkd.service'))).toBe('/lib/systemd/system/systemd-networkd.service');
      expect(readlinkSync(at('etc/systemd/system/multi-user.target.wants/ssh.service'))).toBe('/lib/systemd/system/ssh.service');
      expect(readlinkSync(at('etc/systemd/system/sysinit.target.wants/nftables.service'))).toBe('/lib/systemd/system/nftables.service');
      expect(readFileSync(at('etc/nftables.conf'), 'utf8')).toContain('tcp dport 22 accept');
      expect(readFileSync(at('etc/motd'), 'utf8')).toBe(readFileSync('images/minimal/files/motd', 'utf8'));
      expect(readFileSync(at('etc/systemd/journald.conf.d/livery.conf'), 'utf8')).toContain('Storage=volatile');
      expect(readlinkSync(at('etc/systemd/system/apt-daily.timer'))).toBe('/dev/null');
      expect(readFileSync(at('etc/machine-id'), 'utf8')).toBe('');
      expect(readdirSync(at('etc/ssh')).filter((f) => f.startsWith('ssh_host_'))).toEqual([]);
      expect(readFileSync(at('etc/systemd/system/ssh.service.d/livery-host-keys.conf'), 'utf8')).toContain('ssh-keygen -A');
      expect(readFileSync(at('etc/hostname'), 'utf8')).toBe('localhost\n');
      expect(readFileSync(at('etc/shadow'), 'utf8')).toMatch(/^root:\*:/);
      expect(existsSync(at('.livery-stage'))).toBe(false);
      expect(existsSync(at('usr/sbin/policy-rc.d'))).toBe(false);
      expect(readdirSync(at('boot')).filter((f) => f.startsWith('vmlinuz'))).toEqual([]);
      // Pruned module trees are absent; NIC drivers stay.
      const kernelDir = join(at('usr/lib/modules'), readdirSync(at('usr/lib/modules'))[0]!, 'kernel');
      expect(existsSync(join(kernelDir, 'drivers/net/wireless/intel'))).toBe(false);
      expect(existsSync(join(kernelDir, 'drivers/net/ethernet/intel/igb/igb.ko'))).toBe(true);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it(
    'a second build of the same recipe gives the same rootfs (warm cache)',
    async () => {
      const second = await buildImage({ recipePath: MINIMAL, outDir: out, cacheDir: CACHE });
      expect(second.manifest.version).toBe(first.manifest.version.replace(/\.1$/, '.2'));
      expect(second.timings.bootstrap).toBeDefined();
      const sha = (m: ImageManifest, role: string) => m.artifacts.find((a) => a.role === role)!.sha256;
      expect(sha(second.manifest, 'rootfs')).toBe(sha(first.manifest, 'rootfs'));
      expect(sha(second.manifest, 'initrd')).toBe(sha(first.manifest, 'initrd'));
      expect(sha(second.manifest, 'kernel')).toBe(sha(first.manifest, 'kernel'));
    },
    BUILD_TIMEOUT,
  );

  it(
    'a failing %post stops the build naming the step and the log tail, and leaves no bundle',
    async () => {
      const dir = join(work, 'failing');
      const failOut = join(work, 'fail-out');
      mkdirSync(dir);
      writeFileSync(join(dir, 'recipe'), `%include ${MINIMAL}\nname failing\n%post\necho "about to fail from post"\nexit 3\n%end\n`);
      const err = await buildImage({ recipePath: join(dir, 'recipe'), outDir: failOut, cacheDir: CACHE }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BuildError);
      const b = err as BuildError;
      expect(b.step).toBe('post');
      expect(b.message).toMatch(/^build step 'post' failed: %post at .*failing\/recipe:3 failed: unshare exited with status 3\n/);
      expect(b.logTail).toContain('about to fail from post');
      expect(b.logTail.length).toBeLessThanOrEqual(30);
      expect(readdirSync(failOut)).toEqual([]);
      // This build's scratch tree (named in its log by the overlay mount) is unmounted and gone.
      const scratchTree = new RegExp(`${CACHE}/work-[A-Za-z0-9]+`).exec(readFileSync(b.logPath, 'utf8'))![0];
      expect(mountsUnder(scratchTree)).toEqual([]);
      expect(existsSync(scratchTree)).toBe(false);
    },
    BUILD_TIMEOUT,
  );
});
