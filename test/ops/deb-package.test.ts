/**
 * `make deb`: the Debian package is built from this checkout, carries what livery runs on and
 * nothing of the development tree, its unit passes `systemd-analyze verify`, and it installs
 * into a clean Debian 12 root (mmdebstrap minbase from this machine's mirror) where apt
 * fetches its Depends, and livery then runs there: `--version`, `serve --check-config` with
 * the shipped conffile, a real `serve` as the livery user answering /healthz, and, in a private
 * network namespace, DHCP and TFTP on their ports with the unit's one capability.
 */
import { execFile, execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemDebianMirror } from '../../src/builder/mirror.js';
import { removeTree } from '../../src/builder/safe-remove.js';
import { StepRunner } from '../../src/builder/steps.js';
import { chrootCommand } from '../../src/builder/chroot.js';
import { livery } from '../helpers/cli.js';
import { cachedMinbase, chrootSh, keepAptArchives, seedAptArchives, unpackRoot } from '../helpers/debian-root.js';
import { createTestNet } from '../helpers/netns.js';

const REPO = resolve(import.meta.dirname, '../..');
const CACHE = '/var/cache/livery/deb-test';
const SKIP = process.getuid?.() === 0 ? null : 'needs root (mmdebstrap, chroot)';
const work = join(REPO, 'test/.tmp', `deb-${process.pid}`);
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
const root = join(work, 'root');
let deb = '';
let contents: string[] = [];

const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
const dpkgDeb = (...args: string[]) => execFileSync('dpkg-deb', args, { encoding: 'utf8', maxBuffer: 64 << 20 });

beforeAll(async () => {
  if (SKIP) return;
  mkdirSync(work, { recursive: true });
  // Not execFileSync: a worker blocked for the whole build misses vitest's own messages.
  deb = (await promisify(execFile)(join(REPO, 'packaging/build-deb.sh'), [join(work, 'out')], { encoding: 'utf8', timeout: 600_000 })).stdout.trim();
  contents = dpkgDeb('-c', deb)
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(line.indexOf('./') + 1).replace(/ -> .*$/, ''));
}, 660_000);

afterAll(() => {
  if (!SKIP) removeTree(work);
});

describe.skipIf(SKIP)('the Debian package', () => {
  it('names itself, its version and what it depends on', () => {
    const field = (name: string) => dpkgDeb('-f', deb, name).trim();
    expect(field('Package')).toBe('livery');
    expect(field('Version')).toBe(pkg.version);
    expect(field('Architecture')).toBe(execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim());
    const depends = field('Depends').split(/,\s*/);
    // Computed by dpkg-shlibdeps from the bundled node and the addons.
    expect(depends.find((d) => d.startsWith('libc6 (>= '))).toBeDefined();
    expect(depends.find((d) => d.startsWith('libstdc++6'))).toBeDefined();
    expect(depends).toEqual(expect.arrayContaining(['systemd', 'ipxe', 'ipmitool']));
    expect(dpkgDeb('-I', deb)).toMatch(/conffiles/);
    expect(dpkgDeb('--ctrl-tarfile', deb).length).toBeGreaterThan(0);
    const conffiles = execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile "${deb}" | tar -xO ./conffiles`], { encoding: 'utf8' });
    expect(conffiles.trim()).toBe('/etc/livery/livery.toml');
  });

  it('carries the runtime, the build, the addons and the service files, and no development packages', () => {
    for (const path of [
      '/usr/bin/livery',
      '/usr/lib/livery/node',
      '/usr/lib/livery/package.json',
      '/usr/lib/livery/dist/cli/main.js',
      '/usr/lib/livery/dist/builder/assets/init.sh',
      '/usr/lib/livery/pxe-templates/',
      '/usr/lib/livery/native/build/Release/tftp_pump.node',
      '/usr/lib/livery/native/build/Release/datagram.node',
      '/usr/lib/livery/native/build/Release/data_lock.node',
      '/usr/lib/livery/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      '/etc/livery/livery.toml',
      '/usr/lib/systemd/system/livery.service',
      '/usr/lib/sysusers.d/livery.conf',
      '/usr/lib/tmpfiles.d/livery.conf',
    ]) {
      expect(contents, path).toContain(path);
    }
    for (const name of Object.keys(pkg.dependencies)) expect(contents, name).toContain(`/usr/lib/livery/node_modules/${name}/package.json`);
    // A development package that a runtime one also needs (ajv, through fastify) ships: the lock file says which are dev only.
    for (const name of Object.keys(pkg.devDependencies).filter((n) => lock.packages[`node_modules/${n}`]?.dev)) {
      expect(contents, name).not.toContain(`/usr/lib/livery/node_modules/${name}/package.json`);
    }
    expect(contents.filter((p) => (p.startsWith('/usr/lib/livery/dist/') && p.endsWith('.map')) || p.includes('/better-sqlite3/deps/') || p.startsWith('/usr/lib/livery/src/'))).toEqual([]);
  });

  it('ships a conffile whose every commented key, uncommented, is a valid configuration', () => {
    const toml = execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile "${deb}" | tar -xO ./etc/livery/livery.toml`], { encoding: 'utf8' });
    expect(toml).toMatch(/^dataDir = "\/var\/lib\/livery"/m);
    const reference = toml.slice(toml.indexOf('\ndataDir = '));
    const uncommented = join(work, 'uncommented.toml');
    writeFileSync(uncommented, reference.replace(/^# /gm, ''));
    const checked = livery(['serve', '--config', uncommented, '--check-config']);
    expect(checked.code, checked.stderr).toBe(0);
    // The reference shows the defaults: uncommenting all of it changes nothing.
    const defaults = livery(['serve', '--data-dir', '/var/lib/livery', '--check-config'], { LIVERY_CONFIG: '' });
    expect(JSON.parse(checked.stdout)).toEqual(JSON.parse(defaults.stdout));
  });

  it('has a unit systemd-analyze verify accepts once installed, and installs and runs in a clean Debian 12', async () => {
    const runner = new StepRunner(join(work, 'install.log'));
    const mirror = systemDebianMirror();
    expect(mirror, 'no Debian mirror in /etc/apt/sources.list*').toBeDefined();
    await unpackRoot(runner, await cachedMinbase(runner, mirror!, 'bookworm', CACHE), root);
    copyFileSync(deb, join(root, 'tmp/livery.deb'));
    seedAptArchives(CACHE, root);
    await chrootSh(runner, root, 'apt-get install ./livery.deb', 'apt-get update -q && apt-get install -y -q --no-install-recommends /tmp/livery.deb');
    keepAptArchives(root, CACHE);

    expect((await chrootSh(runner, root, 'livery --version', 'livery --version')).trim()).toBe(pkg.version);
    const config = JSON.parse(await chrootSh(runner, root, 'check-config', 'livery serve --check-config')) as { dataDir: string; boot: { templatesDir: string } };
    expect(config.dataDir).toBe('/var/lib/livery');
    expect(config.boot.templatesDir).toBe('/usr/lib/livery/pxe-templates');
    // postinst made the user (sysusers.d) and the data dir (tmpfiles.d).
    const owner = await chrootSh(runner, root, 'user and data dir', 'getent passwd livery >/dev/null && stat -c "%U:%G %a" /var/lib/livery');
    expect(owner.trim()).toBe('livery:livery 750');

    // The full server, as the service user: every production module and addon loads.
    const health = await chrootSh(
      runner,
      root,
      'serve as livery',
      `setpriv --reuid=livery --regid=livery --init-groups livery serve --http-listen 127.0.0.1:0 --no-tftp >/tmp/serve.log 2>&1 &
       url=; for i in $(seq 600); do url=$(sed -n 's/^livery is serving \\(http[^ ]*\\).*/\\1/p' /tmp/serve.log); [ -n "$url" ] && break; kill -0 $! || break; sleep 0.2; done
       [ -n "$url" ] || { cat /tmp/serve.log >&2; exit 1; }
       /usr/lib/livery/node -e 'fetch(process.argv[1] + "/healthz").then((r) => console.log(r.status))' "$url"
       kill $!; wait $! || true; ls /var/lib/livery`,
    );
    expect(health).toMatch(/^200\n/);
    expect(health).toContain('livery.db');

    // verify checks the unit against the installed root: its ExecStart, its dependencies.
    const verify = (name: string) => spawnSync('systemd-analyze', ['verify', `--root=${root}`, name], { encoding: 'utf8' });
    const accepted = verify('livery.service');
    expect(accepted.status, accepted.stderr).toBe(0);
    expect(accepted.stderr).toBe('');
    // ...and would refuse a unit whose program is missing there.
    const unit = readFileSync(join(root, 'usr/lib/systemd/system/livery.service'), 'utf8');
    writeFileSync(join(root, 'etc/systemd/system/livery-broken.service'), unit.replace('ExecStart=/usr/bin/livery', 'ExecStart=/usr/bin/livery-missing'));
    const refused = verify('livery-broken.service');
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('/usr/bin/livery-missing');

    // systemd's own judgement of the installed unit's sandbox: the checks that matter most pass.
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', `--root=${root}`, 'livery.service'], { encoding: 'utf8' });
    const passed = new Set([...security.stdout.matchAll(/^✓ (\S+)/gm)].map((m) => m[1]));
    for (const check of ['User=/DynamicUser=', 'NoNewPrivileges=', 'ProtectSystem=', 'PrivateTmp=', 'ProtectHome=', 'PrivateDevices=', 'CapabilityBoundingSet=~CAP_SYS_ADMIN', 'CapabilityBoundingSet=~CAP_NET_ADMIN', 'RestrictAddressFamilies=~AF_PACKET']) {
      expect(passed, `${check}\n${security.stdout}${security.stderr}`).toContain(check);
    }
    // The one capability, as the namespace test below grants it.
    expect(unit).toMatch(/^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
  }, 1_200_000);

  it('serves DHCP (67, 4011) and TFTP (69) as the livery user with CAP_NET_BIND_SERVICE as its only capability', async () => {
    const net = createTestNet({ serverAddress: '10.231.0.1/24' });
    try {
      writeFileSync(
        join(root, 'etc/livery/caps.toml'),
        `dataDir = "/var/lib/livery"\n[http]\nlisten = "10.231.0.1:8080"\n[tftp]\nlisten = "10.231.0.1:69"\n` +
          `[dhcp]\nenabled = true\nmode = "proxy"\ninterface = "${net.serverIf}"\naddress = "10.231.0.1"\n`,
      );
      // The unit's sandbox as setpriv gives it: user livery, the capability ambient, nothing else in the
      // bounding set. /sys (where livery reads the interface's index) is the namespace's, as under systemd.
      const run = (caps: string) =>
        runUntil(
          net.spawn(net.server, 'unshare', chrootCommand(root, ['sh', '-c', 'mount -t sysfs sysfs /sys && exec "$@"', 'sh', 'setpriv', '--reuid=livery', '--regid=livery', '--init-groups', `--inh-caps=-all${caps}`, `--ambient-caps=-all${caps}`, `--bounding-set=-all${caps}`, 'livery', 'serve', '--config', '/etc/livery/caps.toml'], 0).slice(1)),
          (out) => out.includes('dhcp listening') && out.includes('tftp listening'),
          () => killAllIn(net.server),
        );
      const served = await run(',+net_bind_service');
      expect(served.done, served.output).toBe(true);
      // ...and the capability is what it needs: without it, the first privileged port is refused.
      const refused = await run('');
      expect(refused.done, refused.output).toBe(false);
      expect(refused.output).toMatch(/port (67|69) needs root \(or CAP_NET_BIND_SERVICE\)/);
    } finally {
      net.remove();
    }
  }, 300_000);
});

/**
 * Watches a process's output until `ready` holds or it exits (120 s at most), then ends
 * everything it started with `stop`: killing only the process is not enough, as setpriv's change
 * of user clears the parent-death signal that would otherwise take the server down with unshare.
 */
async function runUntil(proc: ChildProcess, ready: (output: string) => boolean, stop: () => Promise<void>): Promise<{ done: boolean; output: string }> {
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 120_000;
  while (!ready(output) && proc.exitCode === null && proc.signalCode === null && Date.now() < deadline) await sleep(100);
  const done = ready(output);
  await stop();
  return { done, output };
}

/** SIGKILLs every process in the network namespace and waits until none is left. */
async function killAllIn(ns: string): Promise<void> {
  const pids = () => execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  for (let left = pids(), i = 0; left.length > 0; left = pids(), i++) {
    if (i === 300) throw new Error(`processes ${left.join(', ')} in ${ns} outlived SIGKILL for 30 s`);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(100);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
