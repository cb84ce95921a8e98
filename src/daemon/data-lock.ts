import { closeSync, ftruncateSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadAddon } from '../native.js';

interface NativeLock {
  tryLock(path: string): number;
}

/** A second `livery serve` on a data dir that a running server holds. */
export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | null,
  ) {
    super(
      `${dataDir} is in use by another livery serve (${holderPid ? `pid ${holderPid}` : 'pid not yet written'}): ` +
        'one server per data dir, or two DHCP pools would lease from one database. Stop it first, or give this one its own --data-dir',
    );
  }
}

/** The lock file inside a data dir; it holds the server's pid for the message above. */
export const lockPath = (dataDir: string) => join(dataDir, 'serve.lock');

/**
 * Takes the data dir for this process until release() (or until the process dies: the kernel
 * drops a flock with its holder, so kill -9 leaves no stale lock). Offline CLI commands do not
 * take it: SQLite's own locking keeps their short writes safe beside a running server.
 */
export function lockDataDir(dataDir: string): { release(): void } {
  const path = lockPath(dataDir);
  const fd = loadAddon<NativeLock>('data_lock', "livery's data dir lock").tryLock(path);
  if (fd < 0) throw new DataDirLockedError(dataDir, holderPid(path));
  ftruncateSync(fd);
  writeSync(fd, `${process.pid}\n`, 0);
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      closeSync(fd);
    },
  };
}

function holderPid(path: string): number | null {
  const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}
