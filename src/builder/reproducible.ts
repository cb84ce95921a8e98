import { lstatSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Removes what is specific to one build or one machine from an image root, so two builds of
 * the same recipe give the same squashfs and no two machines share an identity. Works on
 * paths only (never follows a symlink out of the root): files are removed before they are
 * rewritten.
 */
export function scrubRoot(root: string): void {
  // Empty machine-id: systemd creates a fresh one on every boot of the RAM root.
  replaceFile(root, 'etc/machine-id', '');
  rmSync(join(root, 'var/lib/dbus/machine-id'), { force: true });
  // The agent sets the hostname from the CMDB; the initramfs writes resolv.conf from DHCP.
  replaceFile(root, 'etc/hostname', 'localhost\n');
  replaceFile(root, 'etc/hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  replaceFile(root, 'etc/resolv.conf', '');
  removeMatching(root, 'etc/ssh', /^ssh_host_.*_key(\.pub)?$/);
  removeMatching(root, 'etc', /^(passwd|group|shadow|gshadow|subuid|subgid)-$/);
  removeMatching(root, 'var/cache/debconf', /-old$/);
  removeMatching(root, 'var/lib/dpkg', /-old$/);
  removeMatching(root, 'var/cache/apt', /\.bin$/);
  for (const path of [
    'var/cache/ldconfig/aux-cache',
    'var/lib/systemd/random-seed',
    'var/lib/systemd/catalog/database',
    'root/.bash_history',
    'root/.wget-hsts',
    'root/.lesshst',
    'root/.cache',
  ]) {
    rmSync(join(root, path), { recursive: true, force: true });
  }
  // apt's lock files and partial/ folders are part of the package layout, not build output.
  for (const dir of ['tmp', 'var/tmp', 'var/lib/apt/lists', 'var/cache/apt/archives']) removeMatching(root, dir, /^(?!partial$|lock$)/);
  removeFilesKeepDirs(join(root, 'var/log'));
}

function replaceFile(root: string, path: string, content: string): void {
  const full = join(root, path);
  rmSync(full, { force: true });
  writeFileSync(full, content, { flag: 'wx', mode: 0o644 });
}

function removeMatching(root: string, dir: string, pattern: RegExp): void {
  for (const name of list(join(root, dir))) if (pattern.test(name)) rmSync(join(root, dir, name), { recursive: true, force: true });
}

/** Log files go; the folders stay because services expect them (journal, apt, private). */
function removeFilesKeepDirs(dir: string): void {
  for (const name of list(dir)) {
    const path = join(dir, name);
    if (lstatSync(path).isDirectory()) removeFilesKeepDirs(path);
    else rmSync(path, { force: true });
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
