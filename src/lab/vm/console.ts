import { readFileSync } from 'node:fs';

/** What the image's agent prints on the console once livery has recorded the boot. */
export const PHONE_HOME = /livery-agent: booted image (\S+) as (\S+)/;
/** ...and once it has run the image's health checks (if it has any) and reported the verdict. */
export const HEALTH_REPORTED = /livery-agent: health: (healthy|unhealthy)/;
/** The agent gave up reaching livery: no phone-home will follow, so a wait for one can end. */
export const AGENT_GAVE_UP = /livery-agent: could not report (the boot|health) to .*/;

export class ConsoleTimeout extends Error {
  override name = 'ConsoleTimeout';
}

/**
 * The serial console of a VM as QEMU writes it to a file. Firmware, iPXE and the kernel draw
 * with terminal escapes and CR/LF pairs; plain() strips them so patterns and people can read it.
 */
export class ConsoleLog {
  constructor(readonly path: string) {}

  /** Everything so far ('' before QEMU has created the file). */
  raw(): string {
    try {
      return readFileSync(this.path, 'utf8');
    } catch {
      return '';
    }
  }

  plain(): string {
    return plainConsole(this.raw());
  }

  /** The last `lines` non-empty lines, for failure messages. */
  tail(lines = 40): string {
    return this.plain().split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
  }

  /**
   * Resolves with the first match of `pattern`. Rejects after `timeoutMs`, as soon as
   * `stopped()` says the VM is gone, or as soon as `failOn` shows (a message after which
   * `pattern` cannot come), with the console's tail in the message.
   */
  async waitFor(pattern: RegExp, opts: { timeoutMs: number; stopped?: () => string | null; failOn?: RegExp; pollMs?: number }): Promise<RegExpMatchArray> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const text = this.plain();
      const match = pattern.exec(text);
      if (match) return match;
      const failed = opts.failOn?.exec(text);
      if (failed) throw new ConsoleTimeout(`the console showed "${failed[0]}" before ${pattern}; console tail:\n${this.tail()}`);
      const stopped = opts.stopped?.();
      if (stopped) throw new ConsoleTimeout(`${stopped} before the console showed ${pattern}; console tail:\n${this.tail()}`);
      if (Date.now() > deadline) throw new ConsoleTimeout(`no ${pattern} on the console within ${Math.round(opts.timeoutMs / 1000)} s; console tail:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
  }
}

/** Removes terminal control sequences and carriage returns, and applies backspaces. */
export function plainConsole(text: string): string {
  const stripped = text
    // CSI sequences (colours, cursor moves, clears), including private ones such as ESC [ = 3 h.
    .replace(/\x1b\[[0-9;?=]*[ -/]*[@-~]/g, '')
    // Two-character escapes (ESC c: reset).
    .replace(/\x1b[@-Z\\-_c]/g, '')
    .replace(/\r+\n/g, '\n')
    .replace(/\r/g, '\n');
  // iPXE erases its "Press Ctrl-B" prompt with backspaces; what is left is what a screen shows.
  const out: string[] = [];
  for (const ch of stripped) {
    if (ch !== '\b') out.push(ch);
    else if (out.length > 0 && out[out.length - 1] !== '\n') out.pop();
  }
  return out.join('');
}
