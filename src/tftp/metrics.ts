import { Counter, Gauge, type Registry } from 'prom-client';
import type { TransferResult } from './transfer.js';

/** Plain-number counters of a TFTP server: the single source of truth its Prometheus metrics are read from. */
export interface TftpStats {
  activeTransfers: number;
  transfers: Record<TransferResult, number>;
  dataBytesSent: number;
  retransmissions: number;
  malformed: Record<string, number>;
  refused: Record<string, number>;
}

/**
 * Counts TFTP events in plain numbers and exposes them to a prom-client registry through
 * collect callbacks: the per-packet path then costs an integer increment, not a metric update.
 */
export class TftpMetrics {
  readonly stats: TftpStats = {
    activeTransfers: 0,
    transfers: { ok: 0, timeout: 0, 'aborted-by-client': 0, error: 0 },
    dataBytesSent: 0,
    retransmissions: 0,
    malformed: {},
    refused: {},
  };

  constructor(registry: Registry) {
    const stats = this.stats;
    const registers = [registry];
    new Counter({
      name: 'livery_tftp_transfers_total',
      help: 'Finished TFTP transfers by result',
      labelNames: ['result'],
      registers,
      collect() {
        setCounts(this, 'result', stats.transfers);
      },
    });
    new Counter({
      name: 'livery_tftp_data_bytes_sent_total',
      help: 'TFTP DATA payload bytes sent, retransmissions included',
      registers,
      collect() {
        setCount(this, stats.dataBytesSent);
      },
    });
    new Gauge({
      name: 'livery_tftp_active_transfers',
      help: 'TFTP transfers in progress',
      registers,
      collect() {
        this.set(stats.activeTransfers);
      },
    });
    new Counter({
      name: 'livery_tftp_malformed_packets_total',
      help: 'TFTP packets dropped as malformed or unexpected, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        setCounts(this, 'reason', stats.malformed);
      },
    });
    new Counter({
      name: 'livery_tftp_refused_requests_total',
      help: 'TFTP requests refused, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        setCounts(this, 'reason', stats.refused);
      },
    });
    new Counter({
      name: 'livery_tftp_retransmitted_packets_total',
      help: 'TFTP packets sent again after a timeout or a partial window ACK',
      registers,
      collect() {
        setCount(this, stats.retransmissions);
      },
    });
  }

  transferStarted(): void {
    this.stats.activeTransfers++;
  }

  transferFinished(result: TransferResult): void {
    this.stats.activeTransfers--;
    this.stats.transfers[result]++;
  }

  packetSent(payloadBytes: number, retransmission: boolean): void {
    this.stats.dataBytesSent += payloadBytes;
    if (retransmission) this.stats.retransmissions++;
  }

  malformed(reason: string): void {
    this.stats.malformed[reason] = (this.stats.malformed[reason] ?? 0) + 1;
  }

  refused(reason: string): void {
    this.stats.refused[reason] = (this.stats.refused[reason] ?? 0) + 1;
  }
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
