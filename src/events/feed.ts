import type { Cmdb } from '../cmdb/index.js';
import type { LivEvent } from '../cmdb/types.js';

type Listener = (e: LivEvent) => void;

/**
 * Fans the event log out to live subscribers (SSE). Every process writes events into SQLite;
 * one poller per process tails the table while anyone listens, so events from DHCP, TFTP and
 * every HTTP worker reach every stream in order, with ids a client can resume from.
 */
export class EventFeed {
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | null = null;
  private cursor = 0;

  constructor(
    private readonly cmdb: Cmdb,
    private readonly intervalMs = 200,
  ) {}

  /** Replays events after `afterId` (if given), then delivers new ones; returns unsubscribe. */
  subscribe(listener: Listener, afterId: number | null): () => void {
    if (this.listeners.size === 0) this.cursor = this.cmdb.events.lastId();
    if (afterId !== null) {
      for (let batch = this.cmdb.events.tail(afterId); batch.length > 0; batch = this.cmdb.events.tail(batch[batch.length - 1]!.id)) {
        for (const e of batch) if (e.id <= this.cursor) listener(e);
        if (batch[batch.length - 1]!.id >= this.cursor) break;
      }
    }
    this.listeners.add(listener);
    this.timer ??= setInterval(() => this.poll(), this.intervalMs);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  close(): void {
    this.listeners.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private poll(): void {
    for (let batch = this.cmdb.events.tail(this.cursor); batch.length > 0; batch = this.cmdb.events.tail(this.cursor)) {
      for (const e of batch) {
        this.cursor = e.id;
        for (const l of this.listeners) l(e);
      }
    }
  }
}
