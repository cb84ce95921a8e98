import type { ChildProcess } from 'node:child_process';
import { hostIn, type TestNet } from './netns.js';

/** One direction of a perfdhcp exchange (DISCOVER-OFFER or REQUEST-ACK) as perfdhcp counts it. */
export interface ExchangeCounts {
  sent: number;
  received: number;
  drops: number;
}

export interface PerfdhcpResult {
  /** Completed DISCOVER-OFFER-REQUEST-ACK exchanges per second of the test period. */
  exchangesPerSecond: number;
  discover: ExchangeCounts;
  request: ExchangeCounts;
  /** Percent of DISCOVERs that got no OFFER within perfdhcp's drop time (1 s). */
  discoverDropPercent: number;
  /**
   * Percent of DISCOVERs whose exchange never got its ACK: no OFFER, or no ACK to the REQUEST,
   * within perfdhcp's drop time of each. Without an exit wait this counts the exchanges still in
   * flight when perfdhcp stopped as unanswered.
   */
  unansweredPercent: number;
  output: string;
}

export interface PerfdhcpRun {
  /** Resolves when perfdhcp exits on its own (after `seconds`) or is stopped. */
  result: Promise<PerfdhcpResult>;
  /** Ends the run early: on SIGINT perfdhcp prints its report for the time so far and exits. */
  stop(): Promise<PerfdhcpResult>;
  /** Freezes perfdhcp (SIGSTOP) so it sends nothing until resume() (SIGCONT). */
  pause(): void;
  resume(): void;
}

/** How much perfdhcp offers: `rate` new exchanges per second from `clients` simulated clients, for `seconds`. */
export interface PerfdhcpLoad {
  rate: number;
  clients: number;
  seconds: number;
  /** Base of the simulated clients' MACs. */
  baseMac?: string;
  /**
   * How long perfdhcp keeps reading replies after its last request (its -W), so that exchanges
   * in flight at the end are not counted as unanswered. The rate it prints then divides by the
   * period plus this wait.
   */
  exitWaitSeconds?: number;
}

/**
 * Runs Kea's perfdhcp in the client namespace as a relay: giaddr is `relay` (an address of the
 * client veth), replies come back to relay:67. The same invocation is used for every server
 * measured; only the offered rate changes.
 */
export function startPerfdhcp(net: TestNet, opts: PerfdhcpLoad & { server: string; relay: string }): PerfdhcpRun {
  return runPerfdhcp(hostIn(net, net.client), ['-l', opts.relay, opts.server], opts);
}

/**
 * Runs perfdhcp on `host` broadcasting on its interface `iface` (perfdhcp's -l with an interface
 * and no server): every server on that segment hears each packet. perfdhcp still acts as a relay
 * (giaddr is the interface's address, replies come back to it on port 67), and it matches a reply
 * to its exchange by transaction id, so an exchange completed by any of the servers counts.
 */
export function startPerfdhcpBroadcast(host: { spawn(cmd: string, args: string[]): ChildProcess }, iface: string, load: PerfdhcpLoad): PerfdhcpRun {
  return runPerfdhcp(host, ['-l', iface], load);
}

function runPerfdhcp(host: { spawn(cmd: string, args: string[]): ChildProcess }, target: string[], opts: PerfdhcpLoad): PerfdhcpRun {
  const base = opts.baseMac ? ['-b', `mac=${opts.baseMac}`] : [];
  const exitWait = opts.exitWaitSeconds ? ['-W', String(Math.round(opts.exitWaitSeconds * 1e6))] : [];
  const args = ['-4', '-r', String(opts.rate), '-R', String(opts.clients), ...base, ...exitWait, '-p', String(opts.seconds), ...target];
  const proc: ChildProcess = host.spawn('perfdhcp', args);
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  // perfdhcp stops itself after the period; the guard covers a perfdhcp that hangs.
  const guard = setTimeout(() => proc.kill('SIGKILL'), (opts.seconds + (opts.exitWaitSeconds ?? 0) + 20) * 1000);
  const result = new Promise<PerfdhcpResult>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code, signal) => {
      clearTimeout(guard);
      // Exit status 3 means "some exchanges were unsuccessful": normal under load.
      if (signal !== null || (code !== 0 && code !== 3)) return reject(new Error(`perfdhcp ${args.join(' ')} ended with ${signal ?? `status ${code}`}:\n${output}`));
      try {
        resolve(parsePerfdhcp(output));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
  const stop = () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGCONT');
      proc.kill('SIGINT');
    }
    return result;
  };
  return { result, stop, pause: () => proc.kill('SIGSTOP'), resume: () => proc.kill('SIGCONT') };
}

/** Reads perfdhcp's final report (Kea 2.x format). */
export function parsePerfdhcp(output: string): PerfdhcpResult {
  const rate = /^Rate: ([0-9.]+) 4-way exchanges\/second/m.exec(output);
  if (!rate) throw new Error(`perfdhcp printed no rate:\n${output}`);
  const section = (name: string): ExchangeCounts => {
    const start = output.indexOf(`***Statistics for: ${name}***`);
    if (start < 0) return { sent: 0, received: 0, drops: 0 };
    const next = output.indexOf('***Statistics for:', start + 1);
    const text = output.slice(start, next < 0 ? undefined : next);
    const field = (label: string) => Number(new RegExp(`^${label}: ([0-9]+)`, 'm').exec(text)?.[1] ?? 0);
    return { sent: field('sent packets'), received: field('received packets'), drops: field('drops') };
  };
  const discover = section('DISCOVER-OFFER');
  const request = section('REQUEST-ACK');
  const percentOfDiscovers = (n: number) => (discover.sent > 0 ? (100 * n) / discover.sent : 0);
  return {
    exchangesPerSecond: Number(rate[1]),
    discover,
    request,
    discoverDropPercent: percentOfDiscovers(discover.drops),
    unansweredPercent: percentOfDiscovers(discover.sent - request.received),
    output,
  };
}
