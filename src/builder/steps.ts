import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';

export interface StepEvent {
  step: string;
  state: 'start' | 'done' | 'failed';
  elapsedMs: number;
}

const TAIL_LINES = 30;

/** A build step failed: names the step and carries the tail of that step's log. */
export class BuildError extends Error {
  constructor(
    readonly step: string,
    readonly reason: string,
    readonly logTail: string[],
    readonly logPath: string,
  ) {
    super(`build step '${step}' failed: ${reason}\n--- last ${logTail.length} lines of ${logPath} ---\n${logTail.join('\n')}`);
    this.name = 'BuildError';
  }
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Return stdout instead of only logging it. */
  capture?: boolean;
  timeoutMs?: number;
  /** What the log shows instead of the full command line (for long generated scripts). */
  logAs?: string;
}

/**
 * Runs build steps in order: times each, reports start/done/failed, appends every command's
 * output to one log file, and turns any failure into a BuildError with the step's log tail.
 */
export class StepRunner {
  readonly timings: Record<string, number> = {};
  private recent: string[] = [];

  constructor(
    readonly logPath: string,
    private readonly onStep: (e: StepEvent) => void = () => {},
    private readonly signal?: AbortSignal,
  ) {}

  log(text: string): void {
    appendFileSync(this.logPath, text.endsWith('\n') ? text : `${text}\n`);
    this.recent.push(...text.replace(/\n$/, '').split('\n'));
    if (this.recent.length > 4 * TAIL_LINES) this.recent = this.recent.slice(-TAIL_LINES);
  }

  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.signal?.throwIfAborted();
    const started = performance.now();
    this.recent = [];
    this.log(`==> ${name}`);
    this.onStep({ step: name, state: 'start', elapsedMs: 0 });
    try {
      const result = await fn();
      const elapsedMs = Math.round(performance.now() - started);
      this.timings[name] = elapsedMs;
      this.log(`<== ${name} (${elapsedMs} ms)`);
      this.onStep({ step: name, state: 'done', elapsedMs });
      return result;
    } catch (err) {
      const elapsedMs = Math.round(performance.now() - started);
      const reason = err instanceof Error ? err.message : String(err);
      this.log(`!!! ${name} failed after ${elapsedMs} ms: ${reason}`);
      this.onStep({ step: name, state: 'failed', elapsedMs });
      throw new BuildError(name, reason, this.recent.slice(-TAIL_LINES), this.logPath);
    }
  }

  /** Runs a command, logging its output; rejects with its exit status when it fails. */
  run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
    this.log(`$ ${opts.logAs ?? [cmd, ...args].map(quoteForLog).join(' ')}`);
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, {
        cwd: opts.cwd,
        env: { ...process.env, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: opts.timeoutMs ?? 20 * 60_000,
        ...(this.signal ? { signal: this.signal } : {}),
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        if (opts.capture) stdout += d;
        this.log(d);
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => this.log(d));
      child.on('error', (err) => reject(new Error(`${cmd}: ${err.message}`)));
      child.on('close', (code, sig) => {
        if (code === 0) resolve(stdout);
        else reject(new Error(`${cmd} exited with ${sig ? `signal ${sig}` : `status ${code}`}`));
      });
    });
  }
}

function quoteForLog(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
