import { SqlAssignmentStore } from './assignments.js';
import { SqlAuditLog } from './audit.js';
import { SqlBmcStore } from './bmcs.js';
import { SqlEventStore } from './events.js';
import { SqlFactStore } from './facts.js';
import { readFleetStats } from './fleet-stats.js';
import { SqlFleetView } from './fleet.js';
import { SqlImageStore } from './images.js';
import { SqlLeaseStore } from './leases.js';
import { SqlMachineStore } from './machines.js';
import { SqlNodeStore } from './nodes.js';
import { SqlImageNodeStore } from './image-nodes.js';
import { SqlRolloutStore } from './rollouts.js';
import { SqlSessionStore } from './sessions.js';
import type { SqlDb } from './sql.js';
import type {
  AssignmentStore,
  AuditLog,
  BatchWriter,
  BmcStore,
  Cmdb,
  EventStore,
  FactStore,
  FleetView,
  ImageStore,
  LeaseStore,
  MachineStore,
  NodeStore,
  ImageNodeStore,
  RolloutStore,
  SessionStore,
  SubnetStore,
  TokenStore,
  WriteLock,
} from './store.js';
import { SqlSubnetStore } from './subnets.js';
import { SqlTokenStore } from './tokens.js';
import type { Actor, FleetStats } from './types.js';

/**
 * What the two engines share: the stores, whose SQL runs on either (sql.ts), and the
 * operations built from the engine's own transactions. An engine supplies the connection and
 * the transactions.
 */
export abstract class SqlCmdb implements Cmdb {
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
  readonly nodes: NodeStore;
  readonly imageNodes: ImageNodeStore;

  constructor(
    private readonly sql: SqlDb,
    readonly migrationBackup: string | null,
  ) {
    const subnets = new SqlSubnetStore(sql);
    this.subnets = subnets;
    this.machines = new SqlMachineStore(sql, subnets);
    this.events = new SqlEventStore(sql);
    this.leases = new SqlLeaseStore(sql);
    this.tokens = new SqlTokenStore(sql);
    this.audit = new SqlAuditLog(sql);
    this.images = new SqlImageStore(sql);
    this.rollouts = new SqlRolloutStore(sql);
    this.bmcs = new SqlBmcStore(sql);
    this.assignments = new SqlAssignmentStore(sql);
    this.sessions = new SqlSessionStore(sql);
    this.fleet = new SqlFleetView(sql);
    this.facts = new SqlFactStore(sql);
    this.nodes = new SqlNodeStore(sql);
    this.imageNodes = new SqlImageNodeStore(sql);
  }

  abstract tx<T>(fn: () => T, lock?: WriteLock): T;
  abstract inTransaction(): boolean;
  abstract soon<T>(fn: () => T): Promise<T>;
  abstract openWriter(): BatchWriter;
  abstract schemaVersion(): number;
  abstract integrityCheck(): string;
  abstract close(): void;

  change<T>(actor: Actor, action: string, target: string | ((result: T) => string), fn: () => T, detail: Record<string, unknown> = {}): T {
    return this.tx(() => {
      const result = fn();
      this.audit.record(actor, action, typeof target === 'function' ? target(result) : target, detail);
      return result;
    });
  }

  fleetStats(): FleetStats {
    return readFleetStats(this.sql, this.subnets);
  }
}
