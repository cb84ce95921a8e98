import type { AssignmentRule } from './assignments.js';
import { discoveredMachine } from './machine-rows.js';
import type { AssignmentStore, BatchOutcome, ImageNodeStore, ImageStore, MachineStore, SubnetStore } from './store.js';
import type { Image, ImageSelector, Machine, Subnet } from './types.js';

/** Machines kept at most; past it the cache starts over (a fleet this size is one clear a while). */
const LIMIT = 100_000;
/**
 * How often the change counter is read, at most. Each read is a read transaction (shared-memory
 * locks, and the page cache started over whenever the writer thread has committed since): a
 * read per packet would cost the DHCP server's event loop a noticeable share of its time under
 * load, while an operator's edit only needs to be seen before the next boot asks.
 */
export const CHECK_INTERVAL_MS = 10;

/**
 * The DHCP server's machines by MAC, kept in memory: a lookup with its MAC list and subnet
 * costs a dozen microseconds in SQLite, and every packet needs one. Any change to an existing
 * machine, made by any process, moves the CMDB's change counter (triggers, migration 3), and
 * the cache is dropped when it moves. The counter is read at most every CHECK_INTERVAL_MS, not
 * per packet: an operator's edit is seen within that, long before a machine that was told to
 * reboot sends its DISCOVER; an edit through this process's own connection (the API, when it
 * serves in this process) is seen by the very next lookup. Unknown MACs are kept too, until a MAC is registered anywhere (the
 * registered-MACs counter, migration 16, moves): on PostgreSQL the query that finds nothing is
 * a round trip on the DHCP loop, and a machine not yet registered repeats its packets until it
 * is; registering drops only those, not the machines; assignment rules are kept too, and
 * dropped with the machines (their changes move the same counter); the ones the DHCP server registers
 * itself come in with their commit (remember()). Given the subnet and image stores (the HTTP boot
 * door), it keeps the subnet of each client address and each resolved image selector too: edits
 * of subnets, images, artifacts and channels move the same counter (migration 12).
 * A cached machine's lastSeenAt is as old as the cached copy.
 */
export class MachineCache {
  private readonly byMac = new Map<string, Machine>();
  private readonly unknownMacs = new Set<string>();
  private version = -1;
  private registeredVersion = -1;
  private checkedAt = -Infinity;
  private ownWritesSeen = -1;
  private rulesCached: AssignmentRule[] | null = null;
  private readonly subnetByAddress = new Map<number, Subnet | null>();
  private readonly imageBySelector = new Map<string, Image | null>();
  private readonly readyByImage = new Map<string, boolean | null>();

  constructor(
    private readonly machines: MachineStore,
    private readonly assignments?: AssignmentStore,
    private readonly catalog?: { subnets: SubnetStore; images: ImageStore; imageNodes: ImageNodeStore },
  ) {}

  /** The subnet whose block holds an address (decide()'s subnetContaining); null results are kept too. */
  subnetContaining(ip: number): Subnet | null {
    this.fresh();
    return kept(this.subnetByAddress, ip, () => this.catalog?.subnets.containing(ip) ?? null);
  }

  /** The image a selector names now (decide()'s resolveImage); null results are kept too. */
  resolveImage(selector: ImageSelector): Image | null {
    this.fresh();
    const key = `${selector.id ?? ''}\n${selector.name ?? ''}\n${selector.channel ?? 'stable'}`;
    return kept(this.imageBySelector, key, () => this.catalog?.images.resolve(selector) ?? null);
  }

  /** Whether `node` holds the image (decide()'s imageReady); its rows move the same counter (migration 15). */
  imageReady(imageId: string, node: string): boolean {
    this.fresh();
    return kept(this.readyByImage, `${imageId}\n${node}`, () => this.catalog?.imageNodes.isReady(imageId, node) ?? false) === true;
  }

  /** The assignment rules, in the order decide() tries them; their changes move the same counter (migration 5). */
  rules(): AssignmentRule[] {
    this.fresh();
    return (this.rulesCached ??= this.assignments?.rules() ?? []);
  }

  byCanonicalMac(mac: string): Machine | null {
    this.fresh();
    const cached = this.byMac.get(mac);
    if (cached) return cached;
    if (this.unknownMacs.has(mac)) return null;
    const machine = this.machines.byCanonicalMac(mac);
    if (machine) {
      if (this.byMac.size >= LIMIT) this.byMac.clear();
      this.byMac.set(mac, machine);
    } else {
      if (this.unknownMacs.size >= LIMIT) this.unknownMacs.clear();
      this.unknownMacs.add(mac);
    }
    return machine;
  }

  /**
   * Takes in the machines a committed batch registered, which the next packets of those MACs
   * would otherwise read back one query each. Only when the change counter has not moved
   * between that commit and this cache's last check: then nobody can have edited them since
   * (and an edit from now on moves the counter, which the next check sees).
   */
  remember(outcome: Pick<BatchOutcome, 'discovered' | 'changeCount'>): void {
    if (outcome.changeCount !== this.version) return;
    for (const [mac, id, at] of outcome.discovered) {
      if (this.byMac.size >= LIMIT) this.byMac.clear();
      this.byMac.set(mac, discoveredMachine(id, mac, at));
      this.unknownMacs.delete(mac);
    }
  }

  /**
   * Drops everything when the change counter has moved, the unknown MACs when a MAC was
   * registered; reads the counters at most every CHECK_INTERVAL_MS, and after every write of
   * this process's own connection.
   */
  private fresh(): void {
    const now = performance.now();
    const ownWrites = this.machines.ownWriteCount();
    if (now - this.checkedAt < CHECK_INTERVAL_MS && ownWrites === this.ownWritesSeen) return;
    this.ownWritesSeen = ownWrites;
    const registered = this.machines.registeredCount();
    if (registered !== this.registeredVersion) {
      this.unknownMacs.clear();
      this.registeredVersion = registered;
    }
    const version = this.machines.changeCount();
    if (version !== this.version) {
      this.byMac.clear();
      this.unknownMacs.clear();
      this.subnetByAddress.clear();
      this.imageBySelector.clear();
      this.readyByImage.clear();
      this.rulesCached = null;
      this.version = version;
    }
    this.checkedAt = now;
  }
}

/** The value kept under `key`, or `load()`'s (null too), kept; past LIMIT entries the map starts over. */
function kept<K, V>(map: Map<K, V | null>, key: K, load: () => V | null): V | null {
  const cached = map.get(key);
  if (cached !== undefined) return cached;
  const value = load();
  if (map.size >= LIMIT) map.clear();
  map.set(key, value);
  return value;
}
