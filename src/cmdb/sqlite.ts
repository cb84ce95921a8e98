import { openDatabase, schemaVersion, type Db } from './db.js';
import { SqliteFactStore } from './facts.js';
import { SqliteFleetView } from './fleet.js';
import { SqliteSessionStore } from './sessions.js';
import { readFleetStats } from './fleet-stats.js';
import { SqliteAssignmentStore } from './assignments.js';
import { SqliteAuditLog } from './audit.js';
import { SqliteBmcStore } from './bmcs.js';
import { SqliteEventStore } from './events.js';
import { GroupCommit } from './group-commit.js';
import { SqliteImageStore } from './images.js';
import { SqliteLeaseStore } from './leases.js';
import { SqliteMachineStore } from './machines.js';
import { SqliteRolloutStore } from './rollouts.js';
import type {
  AssignmentStore,
  FactStore,
  FleetView,
  SessionStore,
  AuditLog,
  BatchWriter,
  BmcStore,
  Cmdb,
  EventStore,
  ImageStore,
  LeaseStore,
  MachineStore,
  RolloutStore,
  SubnetStore,
  TokenStore,
} from './store.js';
import { SqliteSubnetStore } from './subnets.js';
import { SqliteTokenStore } from './tokens.js';
import type { Actor, FleetStats } from './types.js';
import { WalSync } from './wal-sync.js';
import { Writer } from './writer.js';

/**
 * The CMDB on SQLite (better-sqlite3): one file in WAL mode, one connection per process (and
 * one more for the DHCP server's writer thread). Its stores are typed as the interfaces of
 * store.ts, so the compiler holds this engine to the seam; `db` is here for tests and
 * maintenance that need SQLite itself, not for the rest of livery.
 */
export class SqliteCmdb implements Cmdb {
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
  readonly sessions: SessionStore;
  readonly fleet: FleetView;
  readonly facts: FactStore;
  private readonly walSync: WalSync;
  private readonly grouped: GroupCommit;

  constructor(
    readonly db: Db,
    readonly migrationBackup: string | null = null,
  ) {
    const subnets = new SqliteSubnetStore(db);
    this.subnets = subnets;
    this.machines = new SqliteMachineStore(db, subnets);
    this.events = new SqliteEventStore(db);
    this.leases = new SqliteLeaseStore(db);
    this.tokens = new SqliteTokenStore(db);
    this.audit = new SqliteAuditLog(db);
    this.images = new SqliteImageStore(db);
    this.rollouts = new SqliteRolloutStore(db);
    this.bmcs = new SqliteBmcStore(db);
    this.assignments = new SqliteAssignmentStore(db);
    this.sessions = new SqliteSessionStore(db);
    this.fleet = new SqliteFleetView(db);
    this.facts = new SqliteFactStore(db);
    this.walSync = new WalSync(db);
    this.grouped = new GroupCommit((fn, patient) => this.walSync.commit(fn, patient));
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  inTransaction(): boolean {
    return this.db.inTransaction;
  }

  /** See GroupCommit: writes queued in one event-loop turn share a transaction and its fsync. */
  soon<T>(fn: () => T): Promise<T> {
    return this.grouped.run(fn);
  }

  change<T>(actor: Actor, action: string, target: string | ((result: T) => string), fn: () => T, detail: Record<string, unknown> = {}): T {
    return this.tx(() => {
      const result = fn();
      this.audit.record(actor, action, typeof target === 'function' ? target(result) : target, detail);
      return result;
    });
  }

  /** A writer thread with its own connection to this database file (see writer.ts). */
  openWriter(): BatchWriter {
    return new Writer(this.db.name);
  }

  schemaVersion(): number {
    return schemaVersion(this.db);
  }

  integrityCheck(): string {
    return this.db.pragma('integrity_check', { simple: true }) as string;
  }

  fleetStats(): FleetStats {
    return readFleetStats(this.db, this.subnets);
  }

  close(): void {
    if (this.db.open) this.grouped.flush(true);
    this.walSync.close();
    this.db.close();
  }
}

export function openCmdb(path: string): SqliteCmdb {
  const { db, migrationBackup } = openDatabase(path);
  return new SqliteCmdb(db, migrationBackup);
}
