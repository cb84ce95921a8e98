import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ASSETS } from './assets.js';
import { inChroot } from './chroot.js';
import { nftRuleset } from './firewall.js';
import { agentHealthConfig } from '../health/spec.js';
import type { Recipe } from './recipe-types.js';
import type { StepRunner } from './steps.js';

/** Files handed into the image are staged here (inside the root) and removed afterwards. */
const STAGE = '/.livery-stage';

/**
 * Applies a recipe's settings to an image root. Everything that writes into the image runs
 * inside it (chroot), so symlinks in the image resolve within the image and never onto the
 * build machine, and user/group names resolve against the image's own passwd.
 */
export class ImageCustomizer {
  private staged = 0;

  constructor(
    private readonly runner: StepRunner,
    private readonly root: string,
    private readonly recipe: Recipe,
    private readonly epoch: number,
  ) {}

  private chroot(argv: string[], capture = false): Promise<string> {
    return inChroot(this.runner, this.root, argv, this.epoch, { capture });
  }

  /** Runs a shell snippet in the image; values go in as positional parameters, never spliced into the script. */
  private sh(script: string, ...args: string[]): Promise<string> {
    return this.chroot(['/bin/sh', '-ec', script, 'livery', ...args]);
  }

  /** Copies a build-machine file into the stage; returns its path as seen inside the image. */
  private stage(source: string): string {
    const name = `${STAGE}/${++this.staged}`;
    copyFileSync(source, join(this.root, name));
    return name;
  }

  private stageText(text: string): string {
    const name = `${STAGE}/${++this.staged}`;
    writeFileSync(join(this.root, name), text);
    return name;
  }

  private install(staged: string, dest: string, mode: string, owner = 'root', group = 'root'): Promise<string> {
    return this.chroot(['install', '-D', '-m', mode, '-o', owner, '-g', group, staged, dest]);
  }

  async withStage<T>(fn: () => Promise<T>): Promise<T> {
    const stage = join(this.root, STAGE);
    mkdirSync(stage, { mode: 0o700, recursive: true });
    // Keep services from starting inside the build root when a %post installs packages.
    writeFileSync(join(this.root, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    try {
      return await fn();
    } finally {
      rmSync(stage, { recursive: true, force: true });
      rmSync(join(this.root, 'usr/sbin/policy-rc.d'), { force: true });
    }
  }

  async configure(): Promise<void> {
    await this.timezoneAndLocale();
    await this.accounts();
    await this.agent();
    await this.firewall();
    await this.filesAndOverlays();
    await this.services();
  }

  private async timezoneAndLocale(): Promise<void> {
    const { timezone, locale } = this.recipe;
    if (['UTC', 'Etc/UTC'].includes(timezone)) {
      await this.sh('rm -f /etc/localtime; echo Etc/UTC > /etc/timezone');
    } else {
      await this.sh('test -f "/usr/share/zoneinfo/$1" || { echo "unknown time zone $1" >&2; exit 1; }; ln -sfn "/usr/share/zoneinfo/$1" /etc/localtime; echo "$1" > /etc/timezone', timezone);
    }
    if (!['C', 'C.UTF-8', 'POSIX'].includes(locale)) {
      await this.sh(
        'line=$(grep -E "^$1 " /usr/share/i18n/SUPPORTED) || { echo "locale $1 is not in /usr/share/i18n/SUPPORTED" >&2; exit 1; }; echo "$line" > /etc/locale.gen; locale-gen',
        locale,
      );
    }
    await this.sh('echo "LANG=$1" > /etc/default/locale', locale);
  }

  private async accounts(): Promise<void> {
    const root = this.recipe.rootPassword;
    await this.chroot(['usermod', '-p', root.locked ? '*' : root.hash, 'root']);
    for (const user of this.recipe.users) {
      const args = ['useradd', '--create-home', '--user-group', '--shell', user.shell];
      if (user.uid !== undefined) args.push('--uid', String(user.uid));
      if (user.groups.length > 0) args.push('--groups', user.groups.join(','));
      await this.chroot([...args, user.name]);
      await this.chroot(['usermod', '-p', user.passwordHash ?? '!', user.name]);
      if (user.sshKeys.length > 0) {
        const keys = this.stageText(user.sshKeys.join('\n') + '\n');
        await this.sh('home=$(getent passwd "$1" | cut -d: -f6); install -d -m 0700 -o "$1" -g "$1" "$home/.ssh"; install -m 0600 -o "$1" -g "$1" "$2" "$home/.ssh/authorized_keys"', user.name, keys);
      }
      if (user.sudo) {
        // A user without a password can only use sudo without one.
        const rule = `${user.name} ALL=(ALL:ALL) ${user.passwordHash ? '' : 'NOPASSWD: '}ALL\n`;
        await this.install(this.stageText(rule), `/etc/sudoers.d/livery-${user.name}`, '0440');
      }
    }
  }

  private async agent(): Promise<void> {
    await this.install(this.stage(ASSETS.agent()), '/usr/lib/livery/livery-agent', '0755');
    await this.install(this.stage(ASSETS.cmdline()), '/usr/lib/livery/cmdline.sh', '0644');
    await this.install(this.stage(ASSETS.facts()), '/usr/lib/livery/livery-facts.sh', '0755');
    await this.install(this.stage(ASSETS.agentUnit()), '/etc/systemd/system/livery-agent.service', '0644');
    if (this.recipe.health.checks.length > 0) {
      await this.install(this.stageText(agentHealthConfig(this.recipe.health)), '/etc/livery/health', '0644');
    }
    if (existsSync(join(this.root, 'usr/sbin/sshd'))) {
      await this.install(this.stage(ASSETS.sshHostKeys()), '/etc/systemd/system/ssh.service.d/livery-host-keys.conf', '0644');
    }
    // The initramfs writes a .network file for the boot NIC; networkd applies it.
    await this.chroot(['systemctl', 'enable', 'systemd-networkd.service', 'livery-agent.service']);
  }

  private async firewall(): Promise<void> {
    const fw = this.recipe.firewall;
    if (fw.allow.length === 0 && fw.ruleset === undefined) return;
    const ruleset = fw.ruleset ?? nftRuleset(fw.allow);
    const staged = this.stageText(ruleset);
    await this.chroot(['nft', '--check', '-f', staged]).catch(() => {
      throw new Error('the firewall ruleset does not pass "nft --check" (see the log above)');
    });
    await this.install(staged, '/etc/nftables.conf', '0755');
    await this.chroot(['systemctl', 'enable', 'nftables.service']);
  }

  private async filesAndOverlays(): Promise<void> {
    for (const overlay of this.recipe.overlays) {
      const archive = join(this.root, `${STAGE}/${++this.staged}.tar`);
      await this.runner.run('tar', ['-C', overlay.source, '--owner=0', '--group=0', '--numeric-owner', '-cf', archive, '.']);
      // --no-overwrite-dir: /etc, /usr ... keep the image's own modes.
      await this.chroot(['tar', '-C', '/', '--no-overwrite-dir', '-xf', archive.slice(this.root.length)]);
    }
    for (const file of this.recipe.files) {
      await this.install(this.stage(file.source), file.dest, file.mode.toString(8).padStart(4, '0'), file.owner, file.group);
    }
  }

  private async services(): Promise<void> {
    const { enable, disable } = this.recipe.services;
    if (enable.length > 0) await this.chroot(['systemctl', 'enable', ...enable]);
    if (disable.length > 0) await this.chroot(['systemctl', 'disable', ...disable]);
  }

  async postScripts(): Promise<void> {
    for (const post of this.recipe.post) {
      const script = this.stageText(post.body);
      chmodSync(join(this.root, script), 0o755);
      this.runner.log(`%post from ${post.origin.file}:${post.origin.line}`);
      await this.chroot([post.interpreter, script]).catch((err: Error) => {
        throw new Error(`%post at ${post.origin.file}:${post.origin.line} failed: ${err.message}`);
      });
    }
  }

  /** Installed packages with versions, for the manifest. */
  async packageList(): Promise<{ name: string; version: string }[]> {
    const out = await this.chroot(['dpkg-query', '-W', '--showformat=${binary:Package}\\t${Version}\\n'], true);
    return out
      .split('\n')
      .filter((l) => l.includes('\t'))
      .map((l) => {
        const [name, version] = l.split('\t') as [string, string];
        return { name: name.replace(/:[a-z0-9]+$/, ''), version };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
