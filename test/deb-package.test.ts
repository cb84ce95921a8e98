/**
 * `make deb`: the Debian package is built from this checkout, carries what livery runs on and
 * nothing of the development tree, its unit passes `systemd-analyze verify`, and it installs
 * into a clean Debian 12 root (mmdebstrap minbase from this machine's mirror) where apt
 * fetches its Depends, and livery then runs there: `--version`, `serve --check-config` with
 * the shipped conffile, and a real `serve` as the livery user answering /healthz.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemDebianMirror } from '../src/builder/mirror.js';
import { removeTree } from '../src/builder/safe-remove.js';
import { StepRunner } from '../src/builder/steps.js';
import { livery } from './helpers/cli.js';
import { cachedMinbase, chrootSh, keepAptArchives, seedAptArchives, unpackRoot } from './helpers/debian-root.js';

const REPO = resolve(import.meta.dirname, '..');
const CACHE = '/var/cache/livery/deb-test';
const SKIP = process.getuid?.() === 0 ? null : 'needs root (mmdebstrap, chroot)';
const work = join(REPO, 'test/.tmp', `deb-${process.pid}`);
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
let deb = '';
let contents: string[] = [];

const dpkgDeb = (...args: string[]) => execFileSync('dpkg-deb', args, { encoding: 'utf8', maxBuffer: 64 << 20 });

beforeAll(() => {
  if (SKIP) return;
  mkdirSync(work, { recursive: true });
  deb = execFileSync(join(REPO, 'packaging/build-deb.sh'), [join(work, 'out')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }).trim();
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
    for (const name of Object.keys(pkg.devDependencies)) expect(contents, name).not.toContain(`/usr/lib/livery/node_modules/${name}/package.json`);
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
    const root = join(work, 'root');
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
    const verify = (unit: string) => spawnSync('systemd-analyze', ['verify', `--root=${root}`, unit], { encoding: 'utf8' });
    const accepted = verify('livery.service');
    expect(accepted.status, accepted.stderr).toBe(0);
    expect(accepted.stderr).toBe('');
    // ...and would refuse a unit whose program is missing there.
    const unit = readFileSync(join(root, 'usr/lib/systemd/system/livery.service'), 'utf8');
    writeFileSync(join(root, 'etc/systemd/system/livery-broken.service'), unit.replace('ExecStart=/usr/bin/livery', 'ExecStart=/usr/bin/livery-missing'));
    const refused = verify('livery-broken.service');
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('/usr/bin/livery-missing');
  }, 1_200_000);
});
