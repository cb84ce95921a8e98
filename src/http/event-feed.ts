import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Cmdb } from '../cmdb/index.js';
import type { LivEvent } from '../cmdb/types.js';

/** Where one subscriber's events go (an SSE response, in practice). */
export interface EventSink {
  /** Takes one event; false when the sink's buffer is full, so a replay waits for drained(). */
  send(e: LivEvent): boolean;
  /** Resolves once the sink can take more, or has closed. */
  drained(): Promise<void>;
}

interface Subscription {
  sink: EventSink;
  /** The last event id this subscriber has been offered (sent or filtered out by the sink). */
  position: number;
  /**
   * Live subscribers get the poller's events. The others catch up from the CMDB: a replay, or a
   * subscriber whose sink filled up (it resumes from the CMDB once the sink drains).
   */
  live: boolean;
  /** What is left of the page being caught up on, so a sink that drains a little at a time costs no re-read. */
  pending: LivEvent[];
  closed: boolean;
}

/** Events read from the CMDB per page: one page is all a subscriber that is behind holds in memory. */
const REPLAY_PAGE = 100;

/**
 * Fans the event log out to live subscribers (SSE). Every process writes events into SQLite;
 * one poller per process tails the table while anyone listens, so events from DHCP, TFTP and
 * every HTTP worker reach every stream in order, with ids a client can resume from.
 *
 * A replay (a client resuming from an old id) is read page by page, the next page only once the
 * sink has taken the last one, so a long backlog neither sits in memory nor holds the event loop.
 * A live subscriber whose sink is full gets nothing more from the poller: it catches up the same
 * way once its client reads again. What waits for a client that does not read is one page at most.
 */
export class EventFeed {
  private readonly subscriptions = new Set<Subscription>();
  private timer: NodeJS.Timeout | null = null;
  private cursor = 0;

  constructor(
    private readonly cmdb: Cmdb,
    private readonly intervalMs = 200,
  ) {}

  /** Replays events after `afterId` (if given), then delivers new ones; returns unsubscribe. */
  subscribe(sink: EventSink, afterId: number | null): () => void {
    if (this.subscriptions.size === 0) this.cursor = this.cmdb.events.lastId();
    const sub: Subscription = { sink, position: afterId ?? this.cursor, live: afterId === null, pending: [], closed: false };
    this.subscriptions.add(sub);
    if (!sub.live) void this.catchUp(sub, false);
    this.timer ??= setInterval(() => this.poll(), this.intervalMs);
    return () => {
      sub.closed = true;
      this.subscriptions.delete(sub);
      if (this.subscriptions.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  close(): void {
    for (const sub of this.subscriptions) sub.closed = true;
    this.subscriptions.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Pages through the backlog until it reaches what the poller has delivered, then goes live. */
  private async catchUp(sub: Subscription, waitForDrain: boolean): Promise<void> {
    if (waitForDrain) await sub.sink.drained();
    while (!sub.closed) {
      let room = true;
      const page = sub.pending.length > 0 ? sub.pending : this.cmdb.events.tail(sub.position, REPLAY_PAGE);
      let sent = 0;
      while (room && sent < page.length) {
        const e = page[sent++]!;
        sub.position = e.id;
        room = sub.sink.send(e);
      }
      sub.pending = page.slice(sent);
      if (sub.pending.length > 0) {
        await sub.sink.drained();
        continue;
      }
      // The poller delivers everything after its cursor; events it already passed come from here.
      if (sub.position >= this.cursor || page.length === 0) {
        sub.live = true;
        return;
      }
      await (room ? nextTurn() : sub.sink.drained());
    }
  }

  private poll(): void {
    for (let batch = this.cmdb.events.tail(this.cursor); batch.length > 0; batch = this.cmdb.events.tail(this.cursor)) {
      for (const e of batch) {
        this.cursor = e.id;
        for (const sub of this.subscriptions) {
          if (!sub.live || e.id <= sub.position) continue;
          sub.position = e.id;
          if (sub.sink.send(e)) continue;
          sub.live = false;
          void this.catchUp(sub, true);
        }
      }
    }
  }
}
