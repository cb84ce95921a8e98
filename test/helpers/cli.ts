import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

export const CLI = resolve(import.meta.dirname, '../../dist/cli/main.js');

/** Runs the built `livery` binary; tests that use it need `make build` (make test does it). */
export function livery(args: string[], env: Record<string, string> = {}, input?: string) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "make build" first`);
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, input, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** livery() without blocking this process: for a CLI run against a server living in the test process. */
export async function liveryAsync(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "make build" first`);
  return promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
}

export interface ServeProcess {
  proc: ChildProcess;
  url: string;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts `livery serve` as a real process and waits for the URL it prints. */
export async function serveUntilListening(args: string[]): Promise<ServeProcess> {
  const proc = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  await waitForOutput(proc, () => output, /livery is serving (\S+)/);
  return {
    proc,
    url: /livery is serving (\S+)/.exec(output)![1]!,
    output: () => output,
    stop: () =>
      new Promise((done) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return done();
        proc.once('exit', () => done());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Starts `livery serve` on a fresh data dir and waits for the URL and first admin token it prints. */
export async function serveProcess(args: string[]): Promise<ServeProcess & { token: string }> {
  const served = await serveUntilListening(args);
  await waitForOutput(served.proc, served.output, /LIVERY_TOKEN=(\S+)/);
  return { ...served, token: /LIVERY_TOKEN=(\S+)/.exec(served.output())![1]! };
}

// Generous: on a loaded 2-core machine a start with the HTTP workers has taken over 30 s.
async function waitForOutput(proc: ChildProcess, output: () => string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (!pattern.test(output())) {
    if (proc.exitCode !== null) throw new Error(`livery serve exited ${proc.exitCode}:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`livery serve did not start in 90 s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
