import type { WriteOp } from '../cmdb/index.js';
import type { StoredLease } from '../cmdb/leases.js';
import type { Logger } from '../log.js';
import type { DatagramSocket } from '../net/datagram.js';
import type { CmdbOutage } from './cmdb-outage.js';
import type { DhcpBootPath } from './contract.js';
import type { DhcpMetrics } from './metrics.js';
import type { Peer } from './reply-address.js';
import { encodeDhcp, type DhcpPacketInit } from './wire/codec.js';

/** A reply ready to go: the packet, where to, and on which socket. */
export interface Outgoing {
  packet: DhcpPacketInit;
  to: Peer;
  socket: DatagramSocket;
  type: 'offer' | 'ack' | 'nak';
}

/** An ACK granting an address claimed in its batch, and what goes instead if the claim is refused. */
export interface Claim {
  ip: string;
  instead: () => Outgoing;
}

interface Queued {
  out: Outgoing;
  durable: boolean;
  claim?: Claim;
}

/**
 * What the answers of one stretch produced: the writes, the replies and the drops. The read
 * loop flushes it at the end of each stretch as one batch (group commit).
 */
export class Outbox {
  private writes: WriteOp[] = [];
  private outgoing: Queued[] = [];
  /** Batches whose ACKs wait for their commit to reach the disk. */
  private readonly awaitingDisk = new Set<Promise<void>>();

  constructor(
    private readonly commit: DhcpBootPath['commit'],
    private readonly metrics: DhcpMetrics,
    private readonly logger: Logger,
    private readonly outage: CmdbOutage,
    /** After a failed commit: memory may be ahead of the disk, so what was held is read back. */
    private readonly onCommitFailed: () => void,
    /** The rows that held the addresses of refused claims: another node leased them first. */
    private readonly onRefused: (holders: StoredLease[]) => void,
  ) {}

  write(op: WriteOp): void {
    this.writes.push(op);
  }

  /**
   * Queues a reply; a durable one (an ACK) leaves only once this batch's writes are on disk,
   * and, if it grants a claimed address, only if the claim held.
   */
  reply(out: Outgoing, durable: boolean, claim?: Claim): void {
    this.outgoing.push({ out, durable, claim });
  }

  drop(reason: string): void {
    this.metrics.dropped.inc({ reason });
  }

  /**
   * Group commit: every write of this batch in one transaction, then the replies. OFFERs and
   * NAKs promise nothing and go at once; ACKs wait until the leases they grant are on disk.
   * The commit runs on the writer thread, so packets keep being read and decided meanwhile;
   * they form the next batch.
   */
  flush(): void {
    const writes = this.writes;
    const outgoing = this.outgoing;
    if (writes.length === 0 && outgoing.length === 0) return;
    this.writes = [];
    this.outgoing = [];
    this.metrics.batch.observe(outgoing.length);
    const acks = outgoing.filter((o) => o.durable);
    for (const { out, durable: needsDisk } of outgoing) if (!needsDisk) this.transmit(out);
    if (writes.length === 0) {
      acks.forEach(({ out }) => this.transmit(out));
      return;
    }
    const stop = this.metrics.commitSeconds.startTimer();
    const mark = this.outage.mark();
    // A failed commit is logged and the books reloaded whether or not this batch holds ACKs:
    // OFFERs have already gone out on the strength of holds that may now not exist.
    const sent = this.commit(writes).then(
      (refused) => {
        stop();
        this.outage.ok(mark);
        const taken = new Set(refused.map((r) => r.ip));
        if (taken.size > 0) this.onRefused(refused);
        for (const { out, claim } of acks) {
          if (!claim || !taken.has(claim.ip)) this.transmit(out);
          else {
            this.drop('lease-taken');
            this.transmit(claim.instead());
          }
        }
      },
      (err: unknown) => {
        stop();
        if (!this.outage.failed(err)) this.logger.error({ err }, 'lease commit failed: withholding ACKs and reloading leases from the database');
        this.onCommitFailed();
        for (let i = 0; i < acks.length; i++) this.drop('commit-failed');
      },
    );
    this.awaitingDisk.add(sent);
    void sent.finally(() => this.awaitingDisk.delete(sent));
  }

  /** Commits what is pending and waits until every ACK held for the disk has gone out. */
  async settle(): Promise<void> {
    this.flush();
    await Promise.all(this.awaitingDisk);
  }

  private transmit(out: Outgoing): void {
    const failed = out.socket.send(encodeDhcp(out.packet), out.to.port, out.to.address);
    if (failed === null) this.metrics.sent.inc({ type: out.type });
    else this.drop(`send-${failed}`);
  }
}
