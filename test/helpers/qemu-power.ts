import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import type { PowerBackend, ResetType } from './redfish-bmc.js';

/**
 * One QMP command over QEMU's monitor socket: read the greeting, leave capabilities
 * negotiation, run `command`, and resolve with its `return` (QMP errors reject). Events QEMU
 * sends meanwhile (RESET, SHUTDOWN...) are skipped. Bounded by `timeoutMs`.
 */
export function qmp(socketPath: string, command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const timer = setTimeout(() => fail(new Error(`QMP ${command}: no answer within ${timeoutMs} ms`)), timeoutMs);
    let buffer = '';
    let sent = 0;
    const send = (execute: string, a?: Record<string, unknown>) => {
      sent++;
      socket.write(JSON.stringify(a ? { execute, arguments: a } : { execute }) + '\n');
    };
    function fail(err: Error) {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    socket.on('error', (err) => fail(new Error(`QMP ${command}: ${err.message}`)));
    // `quit` may close the socket before its answer arrives: the close is the answer.
    socket.on('close', () => (command === 'quit' && sent === 2 ? (clearTimeout(timer), resolve({})) : fail(new Error(`QMP ${command}: the monitor closed the connection`))));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        if (msg.QMP) send('qmp_capabilities');
        else if (msg.error) fail(new Error(`QMP ${command}: ${msg.error.desc}`));
        else if ('return' in msg && sent === 1) send(command, args);
        else if ('return' in msg && sent === 2) {
          clearTimeout(timer);
          socket.end();
          resolve(msg.return);
        }
      }
    });
  });
}

/**
 * A QEMU VM as the machine behind a Redfish BMC. The VM's power is whether its QEMU runs:
 * On starts one (`start` spawns it with `-qmp unix:<qmpSocket>,server=on,wait=off`),
 * ForceOff is QMP `quit`, GracefulShutdown is `system_powerdown` (the guest's ACPI power button),
 * ForceRestart and GracefulRestart are `system_reset`, PowerCycle is `quit` then a new QEMU,
 * Nmi is `inject-nmi`. Every QEMU start is counted, as a real machine's power-on.
 */
export class QemuPowerBackend implements PowerBackend {
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  readonly resets: ResetType[] = [];
  starts = 0;

  constructor(
    private readonly start: () => ChildProcess,
    private readonly qmpSocket: string,
  ) {}

  powerState(): 'On' | 'Off' {
    return this.running() ? 'On' : 'Off';
  }

  async reset(type: ResetType): Promise<void> {
    this.resets.push(type);
    const on = this.running();
    if (type === 'On') return on ? undefined : this.powerOn();
    if (type === 'ForceOff') return on ? this.quit() : undefined;
    if (type === 'GracefulShutdown') return on ? void (await this.command('system_powerdown')) : undefined;
    if (type === 'Nmi') return on ? void (await this.command('inject-nmi')) : undefined;
    if (type === 'PowerCycle') {
      if (on) await this.quit();
      return this.powerOn();
    }
    // ForceRestart, GracefulRestart: a reset of a running machine, a power-on of one that is off.
    return on ? void (await this.command('system_reset')) : this.powerOn();
  }

  /** Stops QEMU if it runs (the test's teardown). */
  async stop(): Promise<void> {
    if (!this.running()) return;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }

  private running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private powerOn(): void {
    const proc = this.start();
    this.proc = proc;
    this.starts++;
    this.exited = new Promise((resolve) => {
      proc.once('exit', () => resolve());
      proc.once('error', () => resolve());
    });
  }

  private async quit(): Promise<void> {
    await this.command('quit').catch(() => this.proc?.kill('SIGKILL'));
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.running()) {
      this.proc!.kill('SIGKILL');
      await this.exited;
    }
  }

  /** A QMP command to the running QEMU, waiting (bounded) for its monitor socket to accept. */
  private async command(name: string): Promise<unknown> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return await qmp(this.qmpSocket, name);
      } catch (err) {
        if (Date.now() > deadline || !this.running()) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
