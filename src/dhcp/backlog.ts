/** A queue that is consumed from its front: shift() is O(n) on arrays, so keep a head index. */
class Queue<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peekOldest(): T | undefined {
    return this.items[this.head];
  }

  takeOldest(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head++];
    this.compact();
    return item;
  }

  takeNewest(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items.pop();
    this.compact();
    return item;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The packets read but not answered yet, and the order they are answered in when more arrive
 * than the server can answer (a rack powering on, a flood):
 *  - requests first (REQUEST, DECLINE, RELEASE, INFORM), oldest first: each completes an
 *    exchange whose OFFER was already paid for, and a lease the client is waiting to use;
 *  - then DISCOVERs, newest first: under overload a DISCOVER that has waited is the one whose
 *    client is closest to giving up on it, and serving the fresh ones keeps the answered ones
 *    fast instead of making every answer equally late. With no overload there is at most a
 *    packet or two here, and the order makes no difference;
 *  - anything that waited longer than `maxWaitMs` (dhcp.maxWaitMs, 4 s: a PXE ROM's first
 *    retransmission) is dropped unanswered: its client has retransmitted by then, and the
 *    queue stays bounded.
 */
export class Backlog<T extends { at: number; discover: boolean }> {
  private readonly requests = new Queue<T>();
  private readonly discovers = new Queue<T>();

  constructor(private readonly maxWaitMs: number) {}

  get size(): number {
    return this.requests.length + this.discovers.length;
  }

  push(item: T): void {
    (item.discover ? this.discovers : this.requests).push(item);
  }

  /** The next packet to answer, or undefined; the stale ones met on the way go to `stale`. */
  next(now: number, stale: (item: T) => void): T | undefined {
    const oldest = now - this.maxWaitMs;
    for (let item = this.requests.takeOldest(); item; item = this.requests.takeOldest()) {
      if (item.at >= oldest) return item;
      stale(item);
    }
    for (let item = this.discovers.peekOldest(); item && item.at < oldest; item = this.discovers.peekOldest()) {
      stale(this.discovers.takeOldest()!);
    }
    return this.discovers.takeNewest();
  }
}
