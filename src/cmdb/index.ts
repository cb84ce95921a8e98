import { openDatabase, schemaVersion, type Db } from './db.js';
import { AssignmentStore } from './assignments.js';
import { AuditLog } from './audit.js';
import { BmcStore } from './bmcs.js';
import { EventStore } from './events.js';
import { FactStore } from './facts.js';
import { GroupCommit } from './group-commit.js';
import { WalSync } from './wal-sync.js';
import { LeaseStore } from './leases.js';
import { ImageStore } from './images.js';
import { MachineStore } from './machines.js';
import { RolloutStore } from './rollouts.js';
import { SubnetStore } from './subnets.js';
import { TokenStore } from './tokens.js';
import type { Actor } from './types.js';

/**
 * The CMDB: livery's single source of truth. Everything else reaches the database through
 * these stores; no SQL lives outside src/cmdb.
 */
export class Cmdb {
  readonly subnets: SubnetStore;
  readonly machines: MachineStore;
  readonly events: EventStore;
  readonly leases: LeaseStore;
  readonly tokens: TokenStore;
  readonly audit: AuditLog;
  readonly images: ImageStore;
  readonly rollouts: RolloutStore;
  readonly bmcs: BmcStore;
  readonly assignments: AssignmentStore;
  readonly facts: FactStore;
  private readonly walSync: WalSync;
  private readonly grouped: GroupCommit;

  constructor(readonly db: Db) {
    this.subnets = new SubnetStore(db);
    this.machines = new MachineStore(db, this.subnets);
    this.events = new EventStore(db);
    this.leases = new LeaseStore(db);
    this.tokens = new TokenStore(db);
    this.audit = new AuditLog(db);
    this.images = new ImageStore(db);
    this.rollouts = new RolloutStore(db);
    this.bmcs = new BmcStore(db);
    this.assignments = new AssignmentStore(db);
    this.facts = new FactStore(db);
    this.walSync = new WalSync(db);
    this.grouped = new GroupCommit((fn, patient) => this.walSync.commit(fn, patient));
  }

  /** Runs fn in one write transaction: all of it lands, or none of it. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * Runs fn in a transaction shared with the other writes queued this event-loop turn (see
   * GroupCommit): for the boot path's small writes, which many requests make at once.
   */
  soon<T>(fn: () => T): Promise<T> {
    return this.grouped.run(fn);
  }

  /** A write on behalf of `actor`, recorded in the audit log in the same transaction. */
  change<T>(actor: Actor, action: string, target: string | ((result: T) => string), fn: () => T, detail: Record<string, unknown> = {}): T {
    return this.tx(() => {
      const result = fn();
      this.audit.record(actor, action, typeof target === 'function' ? target(result) : target, detail);
      return result;
    });
  }

  schemaVersion(): number {
    return schemaVersion(this.db);
  }

  integrityCheck(): string {
    return this.db.pragma('integrity_check', { simple: true }) as string;
  }

  close(): void {
    if (this.db.open) this.grouped.flush(true);
    this.walSync.close();
    this.db.close();
  }
}

export function openCmdb(path: string): Cmdb {
  return new Cmdb(openDatabase(path));
}

export { CmdbError } from './errors.js';
export { MachineCache } from './machine-cache.js';
export { Writer } from './writer.js';
export type { WriteOp } from './writes.js';
export type { BootStep } from './boot-steps.js';
export { ROLES } from './tokens.js';
export type * from './types.js';
