import type { Cmdb } from '../cmdb/index.js';
import type { BatchWriter, BootStep, WriteOp } from '../cmdb/store.js';
import type { EventInput } from '../cmdb/types.js';
import type { Logger } from '../log.js';

/**
 * Past this many steps handed to the writer and not yet on disk (a CMDB that stalls), a
 * request waits for its own step: the queue then grows no further than the requests in flight.
 */
const MAX_UNWRITTEN = 10_000;

/**
 * The boot steps of HTTP script fetches and the events of artifact downloads, written by a
 * writer thread of their own (writer.ts): those of many requests go as one transaction, with
 * its fsync, off the event loop, which then only decides, renders and sends. A script is
 * answered without waiting for its step to be durable: the step is telemetry (the trace, a
 * rollout's view of the boot), not something the machine's boot depends on, and waiting would
 * tie each connection to a commit window. An artifact's bytes go out once its event is written,
 * so the event log has a machine's downloads before its phone-home, whichever process takes it.
 * Whatever this process answers afterwards sees those steps: every other request first waits
 * for the steps handed over before it (written()), so a phone-home finds the plan it was served
 * and a trace lists the script before the kernel fetched after it.
 */
export class BootStepBatch {
  private writer: BatchWriter | null = null;
  private unwritten = 0;
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly cmdb: Cmdb,
    private readonly log: Pick<Logger, 'error'>,
  ) {}

  /** Hands `step` to the writer; settles at once, unless the writer is MAX_UNWRITTEN behind. */
  record(step: BootStep): Promise<void> {
    const committed = this.handOver({ kind: 'boot-step', step }, { mac: step.mac, stage: step.stage });
    return this.unwritten > MAX_UNWRITTEN ? committed : Promise.resolve();
  }

  /**
   * Hands an event (stamped now unless it says when) to the writer; settles once it is written
   * (or failed, and was logged). For a request whose answer must not overtake its event: what
   * the machine does next may be answered by another HTTP process, which waits for nothing here.
   */
  recordEvent(event: EventInput): Promise<void> {
    return this.handOver({ kind: 'event', event: { ...event, at: event.at ?? Date.now() } }, { mac: event.mac, type: event.type });
  }

  private handOver(op: WriteOp, logged: Record<string, unknown>): Promise<void> {
    this.writer ??= this.cmdb.openWriter();
    this.unwritten++;
    const committed = this.writer.commit([op]).then(
      () => void this.unwritten--,
      (err: unknown) => {
        this.unwritten--;
        this.log.error({ err, ...logged }, 'boot event not recorded');
      },
    );
    this.last = committed;
    return committed;
  }

  /** Whether steps are on their way to the disk (written() would wait). */
  pending(): boolean {
    return this.unwritten > 0;
  }

  /** Settles once every step recorded so far is written (or failed, and was logged). */
  written(): Promise<unknown> {
    return this.last;
  }

  /** Writes what was handed over, then ends the writer thread. */
  async close(): Promise<void> {
    await this.writer?.close();
  }
}
