import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NginxOptions {
  /** The address to listen on (default 127.0.0.1). */
  address?: string;
  /** How to start the process, e.g. inside a network namespace (default: child_process.spawn). */
  spawn?: (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;
  /** More directives for the server block, e.g. `location … { return 204; }`. */
  serverDirectives?: string;
}

/**
 * Starts Debian's nginx as a reference static server on address:port with its own config,
 * pid, logs and temp paths under `dir` (never the system config): 2 workers, sendfile on.
 */
export async function startNginx(dir: string, root: string, port: number, opts: NginxOptions = {}): Promise<{ stop: () => Promise<void> }> {
  mkdirSync(join(dir, 'nginx-tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const pidFile = join(dir, 'nginx.pid');
  writeFileSync(
    conf,
    `worker_processes 2;
daemon off;
pid ${pidFile};
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/nginx-tmp/body;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  fastcgi_temp_path ${dir}/nginx-tmp/fastcgi;
  uwsgi_temp_path ${dir}/nginx-tmp/uwsgi;
  scgi_temp_path ${dir}/nginx-tmp/scgi;
  default_type application/octet-stream;
  server { listen ${opts.address ?? '127.0.0.1'}:${port}; root ${root}; ${opts.serverDirectives ?? ''} }
}
`,
  );
  // A pid file left by an earlier nginx (killed, so it could not remove it) would mean "ready" at once.
  rmSync(pidFile, { force: true });
  const proc: ChildProcess = (opts.spawn ?? spawn)('nginx', ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  // nginx writes its pid file only after it has bound and is listening on its sockets; unlike a
  // test request, that works wherever it runs (a namespace this process cannot reach too).
  const deadline = Date.now() + 10_000;
  while (!(readPid(pidFile) > 0)) {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    stop: () =>
      new Promise((done) => {
        if (proc.exitCode !== null) return done();
        proc.once('exit', () => done());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
      }),
  };
}

function readPid(path: string): number {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return 0;
  }
}

/** nginx -v's answer ("nginx version: nginx/1.22.1"), which it prints on stderr. */
export function nginxVersion(): string {
  return (spawnSync('nginx', ['-v'], { encoding: 'utf8', timeout: 5000 }).stderr ?? '').trim() || 'unknown';
}
