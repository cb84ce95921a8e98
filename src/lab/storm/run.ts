import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { DhcpHub } from './dhcp-hub.js';
import { bootMachine, type MachineSettings } from './machine.js';
import { TftpClients } from './tftp-clients.js';
import { summarize, watchLoopDelay, type StormReport } from './report.js';
import { runBounded } from './scheduler.js';

export interface StormOptions extends Omit<MachineSettings, 'hub' | 'tftpClients' | 'signal' | 'clock'> {
  clients: number;
  /** Machines booting at once; the rest start as others finish. */
  concurrency: number;
  dhcpClientPort: number;
  dhcpServerPort: number;
  /** Hard bound on the whole storm: machines still booting then fail. */
  deadlineMs: number;
}

/**
 * Boots `clients` virtual machines against a livery and reports how it went. Must run where
 * the machines' broadcasts reach livery's DHCP and their leased addresses are local (in the
 * storm's client network namespace, with the pool routed to lo).
 */
export async function runStorm(o: StormOptions): Promise<StormReport> {
  const hub = await DhcpHub.open({ clientPort: o.dhcpClientPort, serverPort: o.dhcpServerPort });
  const tftpClients = TftpClients.open();
  const signal = AbortSignal.timeout(o.deadlineMs);
  // Every machine listens on it; that many listeners is the design, not a leak.
  setMaxListeners(0, signal);
  const epoch = performance.now();
  const startedAt = Date.now();
  const loopDelay = watchLoopDelay();
  try {
    const settings: MachineSettings = { ...o, hub, tftpClients, signal, clock: () => performance.now() - epoch };
    const results = await runBounded(o.clients, o.concurrency, (index) => bootMachine(index, settings));
    return summarize(results, { startedAt, concurrency: Math.min(o.concurrency, o.clients), dhcp: hub.stats, loopDelay: loopDelay() });
  } finally {
    await Promise.all([hub.close(), tftpClients.close()]);
  }
}
