/**
 * One server per data dir: a second `livery serve` on the same data dir is refused with the
 * first one's pid, offline CLI commands keep working beside the server, and a server killed
 * with -9 leaves no stale lock behind.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { livery, serveProcess, serveUntilListening } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops) await stop();
  dir.cleanup();
});

const args = ['--data-dir', dir.path, '--http-listen', '127.0.0.1:0', '--no-tftp'];

describe('livery serve takes its data dir exclusively', () => {
  it('refuses a second server naming the first one, lets offline commands in, and survives kill -9', async () => {
    const first = await serveProcess(args);
    stops.push(first.stop);

    const second = livery(['serve', ...args]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`in use by another livery serve (pid ${first.proc.pid})`);
    // The first server is untouched by the attempt.
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);

    // An offline command writes into the same database while the server runs; the server sees it.
    const created = livery(['token', 'create', '--role', 'reader', '--name', 'beside-serve', '--data-dir', dir.path]);
    expect(created.code, created.stderr).toBe(0);
    const reader = created.stdout.trim();
    expect((await fetch(`${first.url}/v1/machines`, { headers: { authorization: `Bearer ${reader}` } })).status).toBe(200);

    // kill -9 leaves the lock file but not the lock: the next server starts.
    const gone = new Promise((r) => first.proc.once('exit', r));
    first.proc.kill('SIGKILL');
    await gone;
    expect(existsSync(join(dir.path, 'serve.lock'))).toBe(true);
    const third = await serveUntilListening(args);
    stops.push(third.stop);
    expect((await fetch(`${third.url}/healthz`)).status).toBe(200);
  }, 240_000);
});
