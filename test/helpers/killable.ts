import { spawn, type ChildProcess } from 'node:child_process';

/** A livery process a crash test can kill -9: started with node and `args`, ready once it prints its URL. */
export async function startKillable(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 90_000;
  while (!/livery is serving (\S+)/.test(out)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`livery did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, url: /livery is serving (\S+)/.exec(out)![1]! };
}

/** SIGKILL, and wait until the process is gone. */
export async function kill9(proc: ChildProcess): Promise<void> {
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await gone;
}
