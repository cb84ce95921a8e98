import { applyBootWrites, BootWriteCollector } from '../cmdb/boot-steps.js';
import type { Cmdb } from '../cmdb/index.js';
import type { BootStep } from '../cmdb/store.js';

/**
 * Boot steps from many concurrent requests, written as one set: the steps recorded before the
 * CMDB's next group commit (Cmdb.soon) are gathered into one BootWriteCollector, so a commit of
 * a thousand script fetches costs one set-wise insert of events and one last-seen stamp, as a
 * DHCP batch does, instead of two statements per request. Each caller's promise settles once
 * its step is durable.
 */
export class BootStepBatch {
  private pending: BootWriteCollector | null = null;
  private written: Promise<void> = Promise.resolve();

  constructor(private readonly cmdb: Cmdb) {}

  record(step: BootStep): Promise<void> {
    if (!this.pending) {
      const collector = new BootWriteCollector();
      this.pending = collector;
      this.written = this.cmdb.soon(() => {
        // Steps recorded from here on start the next set.
        if (this.pending === collector) this.pending = null;
        applyBootWrites(this.cmdb, collector.result(), Date.now());
      });
    }
    this.pending.step(step);
    return this.written;
  }
}
