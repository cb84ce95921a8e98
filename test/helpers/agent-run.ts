import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The agent script every image carries, run as is by the tests. */
export const AGENT = resolve('src/builder/assets/livery-agent.sh');

export interface AgentRun {
  code: number;
  stdout: string;
  /** The UTS hostname the agent left behind (its own namespace's). */
  hostname: string;
  /** The scratch root the agent wrote etc/ and run/livery/ under. */
  root: string;
}

/**
 * Runs the agent as an image's systemd would, but with its files under `root` (LIVERY_AGENT_ROOT)
 * and the kernel command line from a file (LIVERY_AGENT_CMDLINE). The hostname change happens
 * in a UTS namespace of its own (unshare --uts, so root only): the test host's is never touched.
 */
export function runAgent(root: string, cmdline: string, opts: { prepare?: (root: string) => void; path?: string; } = {}): Promise<AgentRun> {
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'run/livery'), { recursive: true });
  opts.prepare?.(root);
  writeFileSync(join(root, 'cmdline'), `${cmdline}\n`);
  const script = 'sh "$0"; rc=$?; echo "UTS-HOSTNAME=$(hostname)"; exit $rc';
  return new Promise((done) => {
    execFile(
      'unshare',
      ['--uts', 'sh', '-c', script, AGENT],
      { env: { PATH: opts.path ?? process.env.PATH!, LIVERY_AGENT_CMDLINE: join(root, 'cmdline'), LIVERY_AGENT_ROOT: root }, timeout: 60_000 },
      (err, stdout) => {
        const code = err ? ((err as { code?: number }).code ?? -1) : 0;
        const hostname = /UTS-HOSTNAME=(.*)/.exec(stdout)?.[1] ?? '';
        done({ code, stdout: stdout.replace(/UTS-HOSTNAME=.*\n$/, ''), hostname, root });
      },
    );
  });
}
