import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/lib/harness.js';

/**
 * A throwaway PostgreSQL 15 cluster for tests, from Debian's postgresql-15: initdb into a
 * fresh temp dir, the server listening on a Unix socket in that dir and on 127.0.0.1 only,
 * fsync on, a database `livery` owned by a role `livery` that logs in with a password (scram).
 * Use it from beforeAll/afterAll: stop() stops the server and removes everything.
 */
export interface TestPostgres {
  /** postgres://livery@127.0.0.1:PORT/livery (no password in it: see `password`). */
  url: string;
  /** The same database through the Unix socket: postgres://livery@localhost/livery?host=SOCKETDIR&port=PORT (the host parameter wins). */
  socketUrl: string;
  password: string;
  /** A file holding just the password (no newline), readable by root only. */
  passwordFile: string;
  socketDir: string;
  port: number;
  dataDir: string;
  /** Fast shutdown, then the cluster's files are removed. */
  stop(): Promise<void>;
  /** Fast shutdown, keeping the data: restart() brings it back. */
  halt(): Promise<void>;
  /** SIGKILL to the postmaster, as a crash would (its backends exit when they notice). */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data, whether it was running, halted or killed. */
  restart(): Promise<void>;
  /** SIGSTOP to the postmaster and its backends: a server that stalls (connections open, nothing answered). */
  freeze(): void;
  /** SIGCONT: the frozen server goes on. */
  thaw(): void;
}

const BIN = '/usr/lib/postgresql/15/bin';
const SYSTEM_USER = 'postgres';
/** Bound of pg_ctl's own waits for the server to start or stop (-t). */
const PG_CTL_WAIT_S = 60;
/** After a kill, orphaned backends may still hold the old shared memory for a moment: start retries until then. */
const RESTART_AFTER_KILL_MS = 20_000;

/** Why a PostgreSQL test cannot run here (describe.skipIf), or null. */
export const POSTGRES_SKIP =
  process.getuid?.() === 0 ? null : 'needs root: the throwaway PostgreSQL runs as the postgres system user (run the tests as root, e.g. sudo make test)';

export async function startPostgres(opts: { settings?: Record<string, string | number> } = {}): Promise<TestPostgres> {
  if (POSTGRES_SKIP) throw new Error(`startPostgres ${POSTGRES_SKIP}`);
  if (!existsSync(join(BIN, 'initdb')) || !existsSync(join(BIN, 'postgres'))) {
    throw new Error(`PostgreSQL 15 is not installed (${BIN}): install Debian's postgresql-15 package (make deps-test does)`);
  }
  const owner = systemUser(SYSTEM_USER);
  // Under the system temp dir, not the repo: a checkout may sit under a directory the postgres user cannot enter.
  const base = mkdtempSync(join(tmpdir(), 'livery-pg-'));
  const dataDir = join(base, 'data');
  const logFile = join(base, 'server.log');
  const passwordFile = join(base, 'password');
  const password = randomBytes(18).toString('base64url');
  let postmaster: number | null = null;
  const cleanupOnExit = () => {
    if (postmaster) killQuietly(postmaster);
    rmSync(base, { recursive: true, force: true });
  };
  process.once('exit', cleanupOnExit);

  const pgCtl = (...args: string[]) => asPostgres(join(BIN, 'pg_ctl'), ['-D', dataDir, ...args], base);
  const startServer = async () => {
    try {
      await pgCtl('start', '-w', '-t', String(PG_CTL_WAIT_S), '-l', logFile);
    } catch (err) {
      throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${logTail(logFile)}`);
    }
    postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  };
  const halt = async () => {
    if (postmaster === null) return;
    await pgCtl('stop', '-m', 'fast', '-w', '-t', String(PG_CTL_WAIT_S));
    postmaster = null;
  };
  const kill = async () => {
    if (postmaster === null) return;
    const pid = postmaster;
    postmaster = null;
    killQuietly(pid);
    await until(() => !alive(pid), 10_000, `postmaster ${pid} still alive after SIGKILL`);
  };
  const signalAll = (signal: NodeJS.Signals) => {
    if (postmaster === null) throw new Error('PostgreSQL is not running');
    process.kill(postmaster, signal);
    for (const pid of childrenOf(postmaster)) signalQuietly(pid, signal);
  };
  const stop = async () => {
    if (postmaster !== null) signalAll('SIGCONT'); // a frozen server would not stop
    try {
      await halt();
    } catch {
      await kill();
    } finally {
      process.removeListener('exit', cleanupOnExit);
      rmSync(base, { recursive: true, force: true });
    }
  };

  try {
    chownSync(base, owner.uid, owner.gid);
    writeFileSync(passwordFile, password, { mode: 0o600 });
    const port = await freePort();
    // --no-sync: the files of a fresh cluster need no flush (the machine does not crash under a
    // test); the server itself keeps fsync on.
    await asPostgres(join(BIN, 'initdb'), ['-D', dataDir, '-U', SYSTEM_USER, '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions'], base);
    writeFileSync(
      join(dataDir, 'pg_hba.conf'),
      ['local all postgres peer', 'local all all scram-sha-256', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
    );
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      port,
      unix_socket_directories: base,
      fsync: 'on',
      password_encryption: 'scram-sha-256',
      ...opts.settings,
    };
    writeFileSync(join(dataDir, 'postgresql.auto.conf'), Object.entries(settings).map(([k, v]) => `${k} = '${v}'\n`).join(''));
    await startServer();
    // The password goes on stdin, never on a command line another process could read.
    const quoted = password.replaceAll("'", "''");
    await asPostgres(
      join(BIN, 'psql'),
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', base, '-p', String(port), '-d', 'postgres'],
      base,
      `CREATE ROLE livery LOGIN CREATEDB PASSWORD '${quoted}';\nCREATE DATABASE livery OWNER livery;\n`,
    );
    return {
      url: `postgres://livery@127.0.0.1:${port}/livery`,
      socketUrl: `postgres://livery@localhost/livery?host=${encodeURIComponent(base)}&port=${port}`,
      password,
      passwordFile,
      socketDir: base,
      port,
      dataDir,
      stop,
      halt,
      kill,
      freeze: () => signalAll('SIGSTOP'),
      thaw: () => signalAll('SIGCONT'),
      restart: async () => {
        await halt();
        const deadline = Date.now() + RESTART_AFTER_KILL_MS;
        for (;;) {
          try {
            return await startServer();
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await sleep(200);
          }
        }
      },
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/** `url` with the password in it, for a plain pg client (which lets the URL's empty password win over its `password` option). */
export function urlWithPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** Runs a PostgreSQL program as the postgres system user (initdb and postgres refuse root), bounded. */
function asPostgres(program: string, args: string[], cwd: string, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'runuser',
      ['-u', SYSTEM_USER, '--', program, ...args],
      { cwd, timeout: (PG_CTL_WAIT_S + 30) * 1000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' } },
      (err, stdout, stderr) => (err ? reject(new Error(`${program} ${args[0] ?? ''} failed: ${stderr.trim() || err.message}`)) : resolve(stdout)),
    );
    child.stdin!.end(input ?? '');
  });
}

function systemUser(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no '${name}' system user: install Debian's postgresql-15 package, which creates it`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Alive and not a zombie (a reparented postmaster may wait for a reaper that never comes in a container). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        // Fields after the parenthesised command: state, then the parent's pid.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[1]) === parent;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

const killQuietly = (pid: number) => signalQuietly(pid, 'SIGKILL');

function logTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no server log)';
  }
}

async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(what);
    await sleep(20);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
