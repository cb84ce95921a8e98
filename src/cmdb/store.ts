/**
 * The CMDB's one public face: what every other part of livery programs against. The SQLite
 * engine (sqlite.ts and the *Store classes beside it) implements it today; a second engine
 * goes behind the same interfaces. The records are plain data (types.ts and the record types
 * exported beside each SQLite store); no SQL type crosses this seam.
 *
 * Calls are synchronous, because the SQLite engine is (better-sqlite3 runs each statement on
 * the calling thread in microseconds, and the boot path depends on that). An engine whose
 * driver is asynchronous (PostgreSQL through `pg`, issue #28) cannot hide behind these
 * signatures: adding one means turning every method here into one that returns a Promise,
 * `tx(fn)` into `tx(async (store) => ...)` with the transaction's own store handed to fn (a
 * pooled connection per transaction, where SQLite has one per process), and awaiting at the
 * call sites, which the compiler lists once these types change. Nothing outside src/cmdb
 * reaches past these interfaces, so that change stays mechanical.
 */
import type { ImageManifest } from '../catalog/manifest.js';
import type { Assignment, AssignmentInput, AssignmentRule } from './assignments.js';
import type { AuditEntry } from './audit.js';
import type { Bmc, BmcCredentials, BmcInput, BmcPowerState, CheckedBmc } from './bmcs.js';
import type { EventTuple } from './events.js';
import type {
  Actor,
  ApiToken,
  Channel,
  ChannelChange,
  EventInput,
  FleetStats,
  Image,
  ImageReferences,
  ImageSelector,
  ImageSummary,
  LivEvent,
  Machine,
  MachineFilter,
  MachineInput,
  MachineState,
  Role,
  SecureBoot,
  Subnet,
  SubnetInput,
} from './types.js';
import type { Lease, LeaseState, LeaseView, StoredLease } from './leases.js';
import type { CheckedMachine, PendingOwners } from './machine-check.js';
import type { PlanClaims } from './machines.js';
import type { MachinePatch, Rollout, RolloutInput, RolloutMachine, RolloutPatch, RolloutWave, WavePatch } from './rollouts.js';
import type { SecretBox } from './secret-box.js';
import type { Selector } from './selector.js';
import type { ConsoleSession } from './sessions.js';
import type { FleetFilter } from './fleet.js';
import type { BootFacts } from './facts.js';
import type { NodeBeat, NodeRecord } from './nodes.js';
import type { ImageHolder } from './image-nodes.js';
import type { Facts, FactsReport, FlatFacts } from '../facts/types.js';

/**
 * What a write transaction lets write beside it. `exclusive`: nothing, as on SQLite, so that a
 * read-then-write step (an API edit, an import) holds. `shared`: other shared transactions only,
 * for writes whose every statement is atomic per row (the DHCP writer's batches: upserts guarded
 * in their WHERE, registrations ON CONFLICT DO NOTHING) so that several nodes' batches commit
 * side by side; no exclusive write runs beside either. SQLite has one writer whatever is named.
 */
export type WriteLock = 'exclusive' | 'shared';

/** The CMDB (as matchbox's storage.Store): its stores, and the transactions that span them. */
export interface Cmdb {
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
  /** Which node holds every blob of which image. */
  readonly imageNodes: ImageNodeStore;

  /**
   * Runs fn in one write transaction: all of it lands, or none of it. `lock` says what may write
   * beside it (see WriteLock); exclusive unless the caller names shared.
   */
  tx<T>(fn: () => T, lock?: WriteLock): T;
  /** Whether a transaction is open on this connection (a write made now joins it). */
  inTransaction(): boolean;
  /**
   * Runs fn in a transaction shared with the other writes queued this event-loop turn: for
   * the boot path's small writes, which many requests make at once.
   */
  soon<T>(fn: () => T): Promise<T>;
  /** A write on behalf of `actor`, recorded in the audit log in the same transaction. */
  change<T>(actor: Actor, action: string, target: string | ((result: T) => string), fn: () => T, detail?: Record<string, unknown>): T;
  /** A batch writer of its own, for the DHCP server's writes; the caller closes it. */
  openWriter(): BatchWriter;

  /** Where the database was copied before this open migrated its schema, if it did. */
  readonly migrationBackup: string | null;
  /** The counts /metrics reports: machines, leases, pools, the catalog. */
  fleetStats(): FleetStats;

  schemaVersion(): number;
  integrityCheck(): string;
  close(): void;
}

export interface MachineStore {
  /** Moves whenever an existing machine or assignment rule changes, in any process: see MachineCache. */
  changeCount(): number;
  /** Moves whenever a MAC is registered, in any process: see MachineCache. */
  registeredCount(): number;
  /** Moves whenever this process's own connection writes (costs no query): see MachineCache. */
  ownWriteCount(): number;
  /** By MAC (any spelling), numeric id or hostname, or a typed `mac:`, `id:`, `hostname:` ref. */
  find(ref: string | number): Machine | null;
  findByMac(text: string): Machine | null;
  get(ref: string | number): Machine;
  idOfMac(mac: string): number | null;
  /** By a MAC already in canonical form: the boot path's lookup. */
  byCanonicalMac(mac: string): Machine | null;
  list(filter?: MachineFilter): Machine[];
  /** The latest boot's facts, flattened, kept on the machine (selectors and filters read them). */
  setFacts(id: number, facts: FlatFacts): void;
  matching(selector: Selector): Machine[];
  /**
   * Machines that may enforce Secure Boot, given boot.secureBoot = `global`: a superset
   * (their own setting, or one they may inherit, says on); decide() has the last word.
   */
  mayEnforceSecureBoot(global: SecureBoot): Machine[];
  count(state?: MachineState): number;
  create(input: MachineInput): Machine;
  add(input: MachineInput): number;
  /**
   * Registers MACs as new `discovered` machines (the boot path's registration): the id of each
   * new machine, in order, or null for a MAC another transaction registered first.
   */
  addDiscoveredMany(macs: readonly string[], at?: number): (number | null)[];
  /** The owners of those of `macs` (canonical) that have one. */
  ownersOf(macs: readonly string[]): Map<string, number>;
  update(ref: string | number, input: MachineInput): Machine;
  /** Checks a row of a bulk import against the store and the rows before it. */
  check(input: MachineInput, existing: Machine | null, others: PendingOwners): CheckedMachine;
  write(id: number, v: CheckedMachine, macsChanged: boolean, now?: number): void;
  insertMany(machines: CheckedMachine[], now?: number): void;
  /** What changed since a plan was checked: one reason per claim that no longer holds. */
  staleness(plan: PlanClaims): string[];
  retire(ref: string): Machine;
  purge(ref: string): Machine;
  expireDiscovered(seenBefore: number, now: number, limit: number): string[];
  touchLastSeen(id: number, at?: number): void;
  /** Stamps every machine of `ids` as seen at `at`, at once. */
  touchMany(ids: readonly number[], at?: number): void;
}

export interface NodeStore {
  /** Records a node alive now; refuses a name another live node (elsewhere) holds. */
  beat(node: NodeBeat, freshMs: number, now?: number): void;
  list(): NodeRecord[];
  /** Takes or keeps a role one node plays at a time, for ttlMs; whether this node holds it. In a write transaction. */
  lead(role: string, name: string, ttlMs: number, now?: number, force?: boolean): boolean;
  leaderOf(role: string, now?: number): string | null;
  resign(role: string, name: string): void;
}

export interface ImageNodeStore {
  /** Records that a node holds every blob of the image; in a write transaction. */
  markReady(imageId: string, node: string, now?: number): void;
  isReady(imageId: string, node: string): boolean;
  readyOn(imageId: string): string[];
  notReadyOn(node: string): string[];
  /** Other nodes alive since `aliveSince` (ms) holding the image: where its blobs can be fetched. */
  holders(imageId: string, self: string, aliveSince: number): ImageHolder[];
}

export interface SubnetStore {
  list(): Subnet[];
  find(ref: string | number): Subnet | null;
  get(ref: string | number): Subnet;
  /** The subnet whose CIDR holds this address (a number: see net/ipv4). */
  containing(ip: number): Subnet | null;
  create(input: SubnetInput): Subnet;
  update(ref: string, input: SubnetInput): Subnet;
  remove(ref: string): Subnet;
}

export interface LeaseStore {
  claim(lease: Lease, now?: number, force?: boolean): boolean;
  stored(ip: string): StoredLease | null;
  changedSince(since: number): StoredLease[];
  /** claim() for many leases (no address twice, no MAC twice within a subnet); returns the addresses refused. */
  claimMany(claims: readonly { lease: Lease; now: number; force: boolean }[]): string[];
  forMac(mac: string, subnetId: number): StoredLease | null;
  get(ip: string): Lease | null;
  activeFor(mac: string, now?: number): Lease | null;
  inSubnet(subnetId: number): StoredLease[];
  setState(ip: string, mac: string, state: LeaseState, expiresAt: number, now?: number): boolean;
  list(filter?: { subnetId?: number; state?: LeaseState; limit?: number }): LeaseView[];
  count(state?: LeaseState): number;
}

export interface EventStore {
  add(e: EventInput): number;
  /** The newest `limit` events, newest first, optionally of some types only and of one MAC. */
  recent(limit: number, filter?: { types?: string[]; mac?: string }): LivEvent[];
  /** Inserts the events in the given order, at once. */
  addMany(events: readonly EventTuple[]): void;
  /** Events after `afterId`, oldest first: the SSE stream's cursor. */
  tail(afterId: number, limit?: number): LivEvent[];
  lastId(): number;
  /** The MACs with events after `afterId`, and the newest such event's id (`afterId` when there is none). */
  macsAfter(afterId: number): { macs: string[]; lastId: number };
  lastServedImage(macs: string[]): string | null | undefined;
  forMac(mac: string, limit?: number): LivEvent[];
  latestOf(macs: readonly string[], types: readonly string[], afterId?: number): LivEvent | null;
  prune(olderThanMs: number): number;
}

export interface ImageStore {
  find(id: string): Image | null;
  get(id: string): Image;
  findByVersion(name: string, version: string): Image | null;
  resolve(selector: ImageSelector): Image | null;
  /** The one image an id, a unique id prefix, NAME@CHANNEL or NAME:VERSION names; errors say why not. */
  byRef(ref: string): Image;
  list(filter?: { name?: string }): ImageSummary[];
  insert(id: string, manifest: ImageManifest, publishedAt?: number): Image;
  references(id: string): ImageReferences;
  remove(id: string): Image;
  blobInUse(sha256: string): boolean;
  blobsInUse(): Set<string>;
  channels(): Channel[];
  history(name: string, channel: string): ChannelChange[];
  promote(id: string, channelName: string, actor: Actor): ChannelChange | null;
  rollback(nameText: string, channelName: string, actor: Actor): ChannelChange;
}

export interface TokenStore {
  create(name: string, role: Role): { token: string; record: ApiToken };
  verify(token: string): ApiToken | null;
  /** Records a use of the token (to the minute). */
  noteUse(token: ApiToken): void;
  list(): ApiToken[];
  get(id: string): ApiToken;
  revoke(id: string): ApiToken;
  count(): number;
}

export interface AuditLog {
  record(actor: Actor, action: string, target: string, detail?: Record<string, unknown>): void;
  /** Several entries without detail, in order, at once. */
  recordMany(entries: readonly [actor: Actor, action: string, target: string][]): void;
  /** Newest first; `since` in ms since the epoch, `actor` exact, `before` an id for the next page. */
  list(filter?: { since?: number; actor?: string; before?: number; limit?: number }): AuditEntry[];
}

export interface BmcStore {
  get(machineId: number): Bmc | null;
  set(machineId: number, input: BmcInput, box: SecretBox): Bmc;
  /** Checks a BMC and seals its password, before the write (see import.ts). */
  check(machineId: number | null, input: BmcInput, box: SecretBox): CheckedBmc;
  write(machineId: number, b: CheckedBmc): void;
  /** An IPMI BMC commissioning found, without credentials, unless the machine has a BMC: whether it recorded it. */
  recordFound(machineId: number, address: string): boolean;
  remove(machineId: number): void;
  /** null: no BMC, or one whose credentials the operator has not set yet. */
  credentials(machineId: number, box: SecretBox): BmcCredentials | null;
  recordPower(machineId: number, state: BmcPowerState, at?: number): void;
  keyIds(): string[];
}

export interface AssignmentStore {
  /** The rules in the order the boot decision tries them. */
  rules(): AssignmentRule[];
  list(): Assignment[];
  add(input: AssignmentInput): Assignment;
  get(id: number): Assignment;
  remove(id: number): Assignment;
}

export interface RolloutStore {
  create(input: RolloutInput, waves: number[][]): Rollout;
  find(id: number): Rollout | null;
  get(id: number): Rollout;
  list(limit?: number): Rollout[];
  active(): Rollout[];
  machinesBusyElsewhere(machineIds: number[], except?: number | null): number[];
  waves(id: number): RolloutWave[];
  machines(id: number, wave?: number): RolloutMachine[];
  update(id: number, patch: RolloutPatch): void;
  updateWave(id: number, wave: number, patch: WavePatch): void;
  updateMachine(id: number, machineId: number, patch: MachinePatch): void;
}

/**
 * One boot stage of one client as plain data (no plan, no closures), so that it can be written
 * at once or handed to a batch writer: which MAC, which machine if known, what to record.
 */
export interface BootStep {
  stage: string;
  mac: string;
  machineId: number | null;
  imageId: string | null;
  /** Register the MAC as a `discovered` machine if nothing owns it yet. */
  discover: boolean;
  /** Which door saw it (dhcp, tftp, http): the actor of the discovery's audit entry. */
  door: string;
  detail: Record<string, unknown>;
  /** When the door saw it (ms since the epoch): the event's time, however late its commit. */
  at: number;
}

/**
 * A write the DHCP server queues while deciding a packet, as plain data: a batch of them is
 * one transaction. Events carry the time the packet was handled: their commit may come up to
 * a commit window later.
 */
export type WriteOp =
  | { kind: 'boot-step'; step: BootStep }
  /** A claim (SqlLeaseStore.claim): refused while another MAC holds the address, unless `reserved` (the machine's own address). */
  | { kind: 'lease'; lease: Lease; now: number; reserved?: boolean }
  | { kind: 'lease-state'; ip: string; mac: string; state: LeaseState; expiresAt: number; now: number }
  | { kind: 'event'; event: EventInput & { at: number } };

/**
 * What a committed batch registered: the machines it created ([mac, id, registered at]: see
 * discoveredMachine) and the CMDB's change counter at the commit (see MachineCache.remember);
 * and the lease claims it refused, as the rows that held those addresses.
 */
export interface BatchOutcome {
  discovered: [string, number, number][];
  changeCount: number;
  refused: StoredLease[];
}

/** Batches of writes committed off the caller's event loop, in the order given, each all or nothing. */
export interface BatchWriter {
  /** Settles once the batch is durable, with what it registered; rejects if it was rolled back. */
  commit(ops: WriteOp[]): Promise<BatchOutcome>;
  /** Lets everything handed over commit, then stops. */
  close(): Promise<void>;
}

/** The web console's login sessions: only a hash of each session id is kept. */
export interface SessionStore {
  /** A new session for a verified token; returns the session id the browser keeps. */
  create(tokenId: string, ttlMs: number, now?: number): string;
  verify(id: string, now?: number): ConsoleSession | null;
  end(id: string): void;
}

/** The console's reads over the whole fleet: pages of machines, counts, who follows an image. */
export interface FleetView {
  page(filter: FleetFilter): { machines: Machine[]; total: number };
  counts(): { byState: Record<string, number>; byImage: Record<string, number> };
  followers(name: string, channel: string): number;
  pinned(imageId: string): number;
}

/** Each boot's hardware facts and the report they were parsed from. */
export interface FactStore {
  put(machineId: number, bootEventId: number, imageId: string | null, facts: Facts, report: FactsReport, at?: number): void;
  latestReport(machineId: number): FactsReport | null;
  ofBoot(machineId: number, bootEventId: number): BootFacts | null;
  latest(machineId: number, beforeBootEventId?: number): BootFacts | null;
}
