import { Counter, Gauge, type Registry } from 'prom-client';
import type { PumpCounters, PumpOutcome, TransferResult } from './pump.js';

/** Plain-number counters of a TFTP server: the single source of truth its Prometheus metrics are read from. */
export interface TftpStats {
  activeTransfers: number;
  transfers: Record<TransferResult, number>;
  /** DATA payload bytes sent, retransmissions included, by finished and running transfers. */
  dataBytesSent: number;
  retransmissions: number;
  /** Packets dropped by reason: requests here, and transfer packets counted by the pump. */
  malformed: Record<string, number>;
  refused: Record<string, number>;
}

/**
 * Counts TFTP events in plain numbers and exposes them to a prom-client registry through
 * collect callbacks. Packet counts of running transfers live in the native pump; a read (a scrape
 * or `stats`) adds them to the totals of finished transfers.
 */
export class TftpMetrics {
  private readonly finished: TftpStats = {
    activeTransfers: 0,
    transfers: { ok: 0, timeout: 0, 'aborted-by-client': 0, error: 0 },
    dataBytesSent: 0,
    retransmissions: 0,
    malformed: {},
    refused: {},
  };

  constructor(
    registry: Registry,
    private readonly running: () => Iterable<PumpCounters>,
  ) {
    const read = () => this.stats;
    const registers = [registry];
    new Counter({
      name: 'livery_tftp_transfers_total',
      help: 'Finished TFTP transfers by result',
      labelNames: ['result'],
      registers,
      collect() {
        setCounts(this, 'result', read().transfers);
      },
    });
    new Counter({
      name: 'livery_tftp_data_bytes_sent_total',
      help: 'TFTP DATA payload bytes sent, retransmissions included',
      registers,
      collect() {
        setCount(this, read().dataBytesSent);
      },
    });
    new Gauge({
      name: 'livery_tftp_active_transfers',
      help: 'TFTP transfers in progress',
      registers,
      collect() {
        this.set(read().activeTransfers);
      },
    });
    new Counter({
      name: 'livery_tftp_malformed_packets_total',
      help: 'TFTP packets dropped as malformed or unexpected, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        setCounts(this, 'reason', read().malformed);
      },
    });
    new Counter({
      name: 'livery_tftp_refused_requests_total',
      help: 'TFTP requests refused, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        setCounts(this, 'reason', read().refused);
      },
    });
    new Counter({
      name: 'livery_tftp_retransmitted_packets_total',
      help: 'TFTP packets sent again after a timeout or a partial window ACK',
      registers,
      collect() {
        setCount(this, read().retransmissions);
      },
    });
  }

  get stats(): TftpStats {
    const stats = structuredClone(this.finished);
    for (const counters of this.running()) addCounters(stats, counters);
    return stats;
  }

  transferStarted(): void {
    this.finished.activeTransfers++;
  }

  transferFinished(outcome: PumpOutcome): void {
    this.finished.activeTransfers--;
    this.finished.transfers[outcome.result]++;
    addCounters(this.finished, outcome);
  }

  malformed(reason: string): void {
    addCount(this.finished.malformed, reason, 1);
  }

  refused(reason: string): void {
    addCount(this.finished.refused, reason, 1);
  }
}

function addCounters(stats: TftpStats, counters: PumpCounters): void {
  stats.dataBytesSent += counters.dataBytesSent;
  stats.retransmissions += counters.retransmissions;
  for (const [reason, count] of Object.entries(counters.dropped)) addCount(stats.malformed, reason, count);
}

function addCount(totals: Record<string, number>, key: string, count: number): void {
  totals[key] = (totals[key] ?? 0) + count;
}

// prom-client counters only go up, so a scrape rebuilds them from the current totals.
function setCount(counter: Counter, total: number): void {
  counter.reset();
  counter.inc(total);
}

function setCounts<L extends string>(counter: Counter<L>, label: L, totals: Record<string, number>): void {
  counter.reset();
  for (const [value, total] of Object.entries(totals)) counter.inc({ [label]: value } as Record<L, string>, total);
}
