import type { StepRunner } from './steps.js';

/**
 * Mount setup for a command inside the image. It runs in fresh mount and pid namespaces, so
 * /proc, /dev, /run and the borrowed resolv.conf vanish with the command even when it fails
 * or is killed, and any daemon a %post script leaves behind dies with it.
 */
const SETUP = [
  'set -e',
  'root=$1; shift',
  'mount -t proc proc "$root/proc"',
  'mount --rbind /dev "$root/dev"',
  'mount -t tmpfs -o mode=0755 tmpfs "$root/run"',
  // %post scripts may fetch from the network; the image's own resolv.conf is rewritten at boot.
  'if [ -f /etc/resolv.conf ]; then rm -f "$root/etc/resolv.conf"; : > "$root/etc/resolv.conf"; mount --bind /etc/resolv.conf "$root/etc/resolv.conf"; fi',
  'exec chroot "$root" /usr/bin/env -i "$@"',
].join('\n');

export interface ChrootOptions {
  env?: Record<string, string>;
  capture?: boolean;
}

/** Runs argv inside the image root with a clean, fixed environment. */
export function inChroot(runner: StepRunner, root: string, argv: string[], epoch: number, opts: ChrootOptions = {}): Promise<string> {
  const [cmd, ...args] = chrootCommand(root, argv, epoch, opts.env);
  return runner.run(cmd!, args, {
    capture: opts.capture ?? false,
    logAs: `chroot ${argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`,
  });
}

/** The command line that runs argv inside the root (private mount and pid namespaces, fixed environment). */
export function chrootCommand(root: string, argv: string[], epoch: number, extraEnv: Record<string, string> = {}): string[] {
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LC_ALL: 'C.UTF-8',
    DEBIAN_FRONTEND: 'noninteractive',
    SOURCE_DATE_EPOCH: String(epoch),
    ...extraEnv,
  };
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return ['unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--', 'sh', '-c', SETUP, 'livery-chroot', root, ...assignments, ...argv];
}
