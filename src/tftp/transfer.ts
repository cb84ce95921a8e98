import { encodeData, encodeError, ErrorCode } from './codec.js';
import type { ByteSource } from './source.js';

/** Caps the backoff at 32 times the base timeout (tftpd-hpa's last wait with its default six tries). */
const MAX_BACKOFF_DOUBLINGS = 5;

export type TransferResult = 'ok' | 'timeout' | 'aborted-by-client' | 'error';

export interface TransferSettings {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Retransmissions of one window before giving up; each waits twice as long as the one before. */
  retries: number;
  /** OACK to send first (and wait for ACK 0), or null to start straight with DATA block 1. */
  oack: Buffer | null;
}

export interface TransferOutcome {
  result: TransferResult;
  /** Payload bytes the client acknowledged. */
  bytes: number;
  /** Why a transfer did not end 'ok', for the log. */
  detail?: string;
}

/** How a transfer reaches the outside world; the server wires these to a socket and metrics. */
export interface TransferHooks {
  /** `payloadBytes` is 0 for OACK/ERROR; `retransmission` is true when this block was sent before. */
  send(packet: Buffer, payloadBytes: number, retransmission: boolean): void;
  /** Called exactly once, after which the transfer sends nothing more. */
  finished(outcome: TransferOutcome): void;
}

/**
 * One read transfer as a state machine over sequence numbers: 0 is the OACK (if any), 1.. are
 * DATA blocks. On the wire a block number is the sequence number modulo 65536, so files larger
 * than 65535 blocks roll over to block 0 and carry on.
 *
 * Flow control is RFC 7440: send up to `windowsize` blocks past the oldest unacknowledged one;
 * an ACK for block k means "everything up to k arrived", so the window restarts at k+1. That one
 * rule covers a complete window, a partial one (resend from the gap) and windowsize 1 (RFC 1350).
 * An ACK that acknowledges nothing new (a duplicate) never sends anything, which is what
 * prevents the Sorcerer's Apprentice storm; lost packets are recovered by our own timer.
 */
export class Transfer {
  /** Oldest unacknowledged sequence number. */
  private base: number;
  /** Next sequence number to put on the wire. */
  private nextToSend: number;
  /** Highest sequence number ever sent: anything at or below it being sent again is a retransmission. */
  private highestSent: number;
  /** Prepared packets for sequence numbers base, base+1, ... (kept for retransmission). */
  private readonly packets: Buffer[] = [];
  /** Sequence number of the final (short) DATA block, once it has been read. */
  private lastSeq = Number.POSITIVE_INFINITY;
  /** Timeouts in a row without progress; sets the backoff. */
  private timeouts = 0;
  private ackedBytes = 0;
  /** A source fill is underway; when it lands the transfer pumps again. */
  private filling = false;
  private done = false;
  private timer: NodeJS.Timeout | null = null;
  /** When the timer fires, and when the last timeout retransmission went out (performance.now() clock). */
  private deadline = 0;
  private retransmittedAt = 0;

  constructor(
    private readonly source: ByteSource,
    private readonly settings: TransferSettings,
    private readonly hooks: TransferHooks,
  ) {
    if (settings.oack) this.packets.push(settings.oack);
    this.base = settings.oack ? 0 : 1;
    this.nextToSend = this.base;
    this.highestSent = this.base - 1;
  }

  start(): void {
    this.arm(this.settings.timeoutMs);
    this.pump();
  }

  onAck(block: number): void {
    if (this.done) return;
    const acked = this.base + ((block - this.base) & 0xffff);
    if (acked === this.base + 0xffff) return this.onRepeatedAck();
    if (acked > this.highestSent) return; // Stale or bogus: acknowledges nothing we have in flight.
    while (this.base <= acked) {
      const packet = this.packets.shift()!;
      if (packet !== this.settings.oack) this.ackedBytes += packet.length - 4;
      this.base++;
    }
    this.nextToSend = this.base;
    if (acked === this.lastSeq) {
      this.finish({ result: 'ok', bytes: this.ackedBytes });
      return;
    }
    this.pump();
    // After the send: the client is waiting on that, not on our timer.
    if (this.timeouts === 0) this.timer?.refresh();
    else {
      this.timeouts = 0;
      this.arm(this.settings.timeoutMs);
    }
  }

  /**
   * The client acknowledged the block before `base` again: it is alive and still waiting. Backoff
   * is meant for a silent peer, so it is dropped: the next retransmission becomes due one base
   * timeout after the previous one. Still at most one retransmission per base timeout, however
   * often the client repeats itself, so this cannot become the Sorcerer's Apprentice storm.
   */
  private onRepeatedAck(): void {
    if (this.timeouts === 0) return;
    const due = this.retransmittedAt + this.settings.timeoutMs;
    if (due < this.deadline) this.arm(Math.max(0, due - performance.now()));
  }

  /** The client sent ERROR: after an OACK that is how PXE ROMs end a tsize probe, so it is not a failure of ours. */
  onClientError(code: number, message: string): void {
    this.finish({ result: 'aborted-by-client', bytes: this.ackedBytes, detail: `client error ${code}: ${message}` });
  }

  /** Ends the transfer from our side (server shutdown), telling the client why. */
  abort(message: string): void {
    if (this.done) return;
    this.hooks.send(encodeError(ErrorCode.NOT_DEFINED, message), 0, false);
    this.finish({ result: 'error', bytes: this.ackedBytes, detail: message });
  }

  private onTimeout(): void {
    if (this.done) return;
    if (this.timeouts === this.settings.retries) {
      this.finish({ result: 'timeout', bytes: this.ackedBytes, detail: `no ACK after ${this.settings.retries} retransmissions` });
      return;
    }
    this.timeouts++;
    this.nextToSend = this.base;
    this.pump();
    this.retransmittedAt = performance.now();
    // Exponential backoff, as tftpd-hpa does: it eases a congested link, and a client that ignores
    // duplicate DATA and only re-ACKs on its own timer (atftp) gets a gap long enough to do so.
    this.arm(this.settings.timeoutMs * 2 ** Math.min(this.timeouts, MAX_BACKOFF_DOUBLINGS));
  }

  /**
   * Sets the retransmission timer. The hot path uses timer.refresh() instead, which leaves
   * `deadline` stale; it is only read while backed off, and backing off always goes through here.
   */
  private arm(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.deadline = performance.now() + delayMs;
    this.timer = setTimeout(() => this.onTimeout(), delayMs);
  }

  /**
   * Sends whatever the window allows, then prepares the next window while the client is busy, so
   * an ACK is answered straight from memory. Synchronous: when the source runs dry it starts a
   * fill and returns, and the fill pumps again when it lands.
   */
  private pump(): void {
    while (!this.done && this.nextToSend < this.windowEnd()) {
      const index = this.nextToSend - this.base;
      if (index === this.packets.length && !this.prepareNext()) return this.fill();
      this.transmit(this.nextToSend, this.packets[index]!);
      this.nextToSend++;
    }
    // The bound is re-read each time round: preparing the final block lowers it (lastSeq).
    while (!this.done && this.base + this.packets.length < Math.min(this.nextToSend + this.settings.windowsize, this.lastSeq + 1)) {
      if (!this.prepareNext()) return this.fill();
    }
  }

  private windowEnd(): number {
    if (this.base === 0) return 1; // Nothing but the OACK until the client acknowledges it.
    return Math.min(this.base + this.settings.windowsize, this.lastSeq + 1);
  }

  /**
   * Encodes the block after the last prepared one, if the source has its bytes at hand.
   * `base + packets.length` names that block: an ACK drops as many packets as it adds to base.
   */
  private prepareNext(): boolean {
    const data = this.source.take(this.settings.blksize);
    if (data === null) return false;
    const seq = this.base + this.packets.length;
    this.packets.push(encodeData(seq & 0xffff, data));
    if (data.length < this.settings.blksize) this.lastSeq = seq;
    return true;
  }

  private fill(): void {
    if (this.filling || this.done) return;
    this.filling = true;
    this.source.fill(this.settings.blksize).then(
      () => {
        this.filling = false;
        this.pump();
      },
      (err: Error) => {
        if (this.done) return;
        this.hooks.send(encodeError(ErrorCode.NOT_DEFINED, 'read error'), 0, false);
        this.finish({ result: 'error', bytes: this.ackedBytes, detail: `read failed: ${err.message}` });
      },
    );
  }

  private transmit(seq: number, packet: Buffer): void {
    const retransmission = seq <= this.highestSent;
    if (!retransmission) this.highestSent = seq;
    this.hooks.send(packet, packet === this.settings.oack ? 0 : packet.length - 4, retransmission);
  }

  private finish(outcome: TransferOutcome): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.source.close().catch(() => {
      // Closing a read-only file cannot lose data; nothing useful to do with the error.
    });
    this.hooks.finished(outcome);
  }
}
