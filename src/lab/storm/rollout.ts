import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { startRackBmc, type RackBmcOptions } from './bmc.js';
import { DhcpHub } from './dhcp-hub.js';
import { bootMachine, type MachineResult, type MachineSettings } from './machine.js';
import { summarize, watchLoopDelay, type StormReport } from './report.js';
import { TftpClients } from './tftp-clients.js';
import type { StormOptions } from './run.js';

export interface RolloutStormOptions extends Omit<StormOptions, 'concurrency'> {
  bmc: Omit<RackBmcOptions, 'machines' | 'onStart'>;
  /** Ends the run: the rollout is over, whatever became of it. */
  stop: AbortSignal;
}

/**
 * The machines of a rollout: each one boots when livery's rollout power-cycles it through its
 * (simulated) BMC, into whatever image livery serves it. Only the caller knows when the
 * rollout is over (one that rolls back boots some machines twice and others never), so the run
 * ends when `stop` aborts, or at the deadline; the report has each machine's last boot. What paces
 * the boots is livery's rollout (its waves and max-parallel), not this simulator: the report's
 * concurrency is the most machines that were booting at once.
 */
export async function runRolloutStorm(o: RolloutStormOptions): Promise<StormReport> {
  const hub = await DhcpHub.open({ clientPort: o.dhcpClientPort, serverPort: o.dhcpServerPort });
  const tftpClients = TftpClients.open();
  const signal = AbortSignal.timeout(o.deadlineMs);
  setMaxListeners(0, signal);
  const epoch = performance.now();
  const startedAt = Date.now();
  const loopDelay = watchLoopDelay();
  // Livery decides which image each boot gets (the new one, or the previous one on the way back).
  const settings: MachineSettings = { ...o, expected: { ...o.expected, imageId: null }, hub, tftpClients, signal, clock: () => performance.now() - epoch };
  /** Each machine's last boot (a rollout that rolls back boots a machine twice). */
  const results = new Map<number, MachineResult>();
  /** Each machine's boot under way: a BMC reset while it boots starts it over, as on a real machine. */
  const current = new Map<number, AbortController>();
  let booting = 0;
  let peak = 0;
  let done: () => void = () => {};
  const allDone = new Promise<void>((resolve) => (done = resolve));
  signal.addEventListener('abort', () => done(), { once: true });
  o.stop.addEventListener('abort', () => done(), { once: true });
  /** What happened to whom, on stderr (the caller keeps it, to tell why a rollout lost a machine). */
  const note = (line: string) => process.stderr.write(`storm: ${line}\n`);
  const bmc = await startRackBmc({
    ...o.bmc,
    machines: o.clients,
    onStart(index) {
      const cut = current.get(index);
      note(`machine ${index} ${cut ? 'reset while booting: starts over' : 'starts'} at ${Math.round(settings.clock())} ms`);
      cut?.abort(new Error('reset by its BMC while booting'));
      const reset = new AbortController();
      current.set(index, reset);
      booting++;
      peak = Math.max(peak, booting);
      void bootMachine(index, { ...settings, signal: AbortSignal.any([signal, reset.signal]) }).then((r) => {
        booting--;
        // A boot cut short by another reset is not a boot: the one that replaced it counts.
        if (reset.signal.aborted) return;
        current.delete(index);
        if (!r.ok) note(`machine ${index} (${r.mac}) failed at ${r.failure?.stage}: ${r.failure?.error}; retries: ${JSON.stringify(r.retries)}`);
        results.set(index, r);
      });
    },
  });
  // Ready: the caller starts the rollout once it reads this line.
  process.stderr.write(`storm: ${o.clients} BMCs listening on ${o.bmc.address}:${o.bmc.port}\n`);
  try {
    await allDone;
    return summarize([...results.values()].sort((a, b) => a.index - b.index), { startedAt, concurrency: peak, dhcp: hub.stats, loopDelay: loopDelay() });
  } finally {
    bmc.closeAllConnections();
    await new Promise((r) => bmc.close(r));
    await Promise.all([hub.close(), tftpClients.close()]);
  }
}
