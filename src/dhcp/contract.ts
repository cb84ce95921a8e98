import type { BootPlan } from '../boot/plan.js';
import type { BootStep, Machine, Subnet, WriteOp } from '../cmdb/index.js';
import type { StoredLease } from '../cmdb/leases.js';

/**
 * What the DHCP server asks of the rest of livery, handed to it by the daemon (see
 * daemon/dhcp-door.ts), as TFTP is handed its callbacks: the server knows packets, addresses
 * and leases; how a machine boots and how writes reach the disk are someone else's.
 */
export interface DhcpBootPath {
  /** The machine registered under a canonical MAC, or null. Asked once per packet: answer from memory. */
  machine(mac: string): Machine | null;
  /** The boot decision (boot/decide) for a client as its DHCP packet describes it. */
  plan(client: DhcpClient, known: { machine: Machine | null; subnetContaining: (ip: number) => Subnet | null }): BootPlan;
  /** What a stage of a plan records (boot/record), for commit(). */
  step(plan: BootPlan, stage: string, detail: Record<string, unknown>): BootStep;
  /** The subnets and their leases: what the lease books are built from, at start and after a subnet edit. */
  subnets(): Subnet[];
  leasesIn(subnetId: number): StoredLease[];
  /** Lease rows any node wrote after `since` (ms): how nodes sharing a segment follow each other. */
  leasesChangedSince(since: number): StoredLease[];
  /** Whether the livery node so named answers DHCP now (a fresh heartbeat). Asked per packet: answer from memory. */
  nodeAlive(name: string): boolean;
  /**
   * Commits one batch of lease writes and boot events in one transaction; settles once it is
   * on disk (an ACK waits for that) with the rows that refused its lease claims, or rejects if
   * it was rolled back.
   */
  commit(ops: WriteOp[]): Promise<StoredLease[]>;
}

/** What a DHCP client says about itself (options 93, 77, 175 and 60) and where it is. */
export interface DhcpClient {
  mac: string;
  archCode: number | null;
  userClasses: string[];
  hasIpxeOption: boolean;
  vendorClass: string | null;
  /** giaddr for a relayed client, else its own address or ours: places it in a subnet. */
  subnetHint: number | null;
}
