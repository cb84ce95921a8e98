import { Counter, Gauge, type Registry } from 'prom-client';
import { cmdbUnavailable } from '../cmdb/postgres/unavailable.js';
import type { Logger } from '../log.js';

/** Why the CMDB failed the DHCP server, as few values as an operator acts on. */
type Cause = 'timeout' | 'server-stopping' | 'connection-lost' | 'unreachable';

function causeOf(code: string | undefined): Cause {
  if (code === 'LIVERY_PG_TIMEOUT') return 'timeout';
  if (code?.startsWith('57P')) return 'server-stopping';
  if (code?.startsWith('08')) return 'connection-lost';
  return 'unreachable';
}

/**
 * Whether the DHCP server's CMDB answers, told by what its lookups and commits meet. While the
 * database is down every packet fails the same way: the outage is logged once when it starts and
 * once when a commit goes through again, and counted in /metrics (livery_dhcp_cmdb_up, and the
 * failures by cause), rather than an error line per packet.
 */
export class CmdbOutage {
  private readonly up: Gauge;
  private readonly failures: Counter;
  private downSince: number | null = null;
  /** How many outages have begun: a commit carries the count from when it was sent. */
  private begun = 0;

  constructor(
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.up = new Gauge({ name: 'livery_dhcp_cmdb_up', help: "1 while the DHCP server's CMDB answers; 0 from a failure to reach it until a commit goes through again", registers: [registry] });
    this.failures = new Counter({ name: 'livery_dhcp_cmdb_unavailable_total', help: 'Lookups and commits of the DHCP server that failed because the CMDB could not be reached, by cause', labelNames: ['cause'], registers: [registry] });
    this.up.set(1);
  }

  /** Takes an error: true when it says the CMDB is unavailable (then counted, and logged if it starts an outage), false for any other error. */
  failed(err: unknown): boolean {
    if (!cmdbUnavailable(err)) return false;
    const cause = causeOf(err.code);
    this.failures.inc({ cause });
    if (this.downSince === null) {
      this.downSince = Date.now();
      this.begun++;
      this.up.set(0);
      this.logger.error({ err, cause }, 'the CMDB cannot be reached: DHCP withholds ACKs and answers only what it holds in memory until it is back');
    }
    return true;
  }

  /** What a commit sent now carries, so that its success can later be told apart from a stale one. */
  mark(): number {
    return this.begun;
  }

  /**
   * A commit sent at `mark` went through: the CMDB is back, if it was away. A commit sent before
   * the outage began proves nothing about now: its answer can arrive after a lookup that already
   * met the database down, and taking it for a recovery would log the outage twice.
   */
  ok(mark: number): void {
    if (this.downSince === null || mark < this.begun) return;
    this.logger.warn({ downSeconds: (Date.now() - this.downSince) / 1000 }, 'the CMDB answers again: DHCP commits and ACKs again');
    this.downSince = null;
    this.up.set(1);
  }
}
