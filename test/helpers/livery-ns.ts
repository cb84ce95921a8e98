import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI } from './cli.js';
import { hostIn, type TestNet } from './netns.js';

export interface NsLivery {
  proc: ChildProcess;
  output(): string;
  /** Graceful stop (SIGTERM). */
  stop(): Promise<void>;
  /** A crash: SIGKILL, no chance to flush anything. */
  kill9(): Promise<void>;
}

/** Writes a YAML config and starts the built `livery serve` inside the server namespace. */
export function startLiveryInNs(net: TestNet, dir: string, config: Record<string, unknown>, waitFor = 'dhcp listening'): Promise<NsLivery> {
  return startLiveryOn(hostIn(net, net.server), dir, config, waitFor);
}

/** Writes a YAML config to `dir` and starts the built `livery serve` on `host` (a network namespace), once it prints `waitFor`. */
export async function startLiveryOn(host: { spawn(cmd: string, args: string[]): ChildProcess }, dir: string, config: Record<string, unknown>, waitFor = 'dhcp listening'): Promise<NsLivery> {
  const file = join(dir, 'livery.yaml');
  writeFileSync(file, stringify({ log: { level: 'info' }, ...config }));
  const proc = host.spawn(process.execPath, [CLI, 'serve', '--config', file]);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  while (!out.includes(waitFor)) {
    if (proc.exitCode !== null) throw new Error(`livery exited ${proc.exitCode}:\n${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`livery did not print "${waitFor}" in 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const ended = new Promise<void>((r) => proc.once('exit', () => r()));
  const signal = async (sig: NodeJS.Signals) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 10_000))]);
  };
  return { proc, output: () => out, stop: () => signal('SIGTERM'), kill9: () => signal('SIGKILL') };
}
