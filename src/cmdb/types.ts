/** The CMDB's records as the rest of livery sees them: plain data, no SQL types. */
import type { ArtifactRole, ImageManifest } from '../catalog/manifest.js';
import type { FactFilter } from '../facts/filter.js';
import type { FlatFacts } from '../facts/types.js';

export type MachineState = 'discovered' | 'registered' | 'retired';
export type UnknownMacPolicy = 'ignore' | 'discover' | 'default-image' | 'commission';
export type Role = 'admin' | 'operator' | 'publisher' | 'reader';
/** Which loader chain UEFI clients get (see boot.secureBoot); null on a machine or subnet: inherit. */
export type SecureBoot = 'off' | 'on' | 'auto';
export const SECURE_BOOT_VALUES: readonly SecureBoot[] = ['off', 'on', 'auto'];

export interface ImageSelector {
  /** Follow a channel of a named image... */
  name: string | null;
  channel: string | null;
  /** ...or boot exactly this image (a pin wins over the channel). */
  id: string | null;
}

export interface Machine {
  id: number;
  macs: string[];
  hostname: string | null;
  uuid: string | null;
  site: string | null;
  labels: Record<string, string>;
  state: MachineState;
  image: ImageSelector;
  kernelArgs: string;
  vars: Record<string, string>;
  ip: string | null;
  subnet: string | null;
  /** null: the subnet's setting, else boot.secureBoot. */
  secureBoot: SecureBoot | null;
  createdAt: string;
  updatedAt: string;
  lastSeenAt: string | null;
  /** The hardware facts of its latest boot that reported them, flattened (see src/facts); null: none yet. */
  facts: FlatFacts | null;
}

/** Fields an operator sets; everything optional on update, `macs` required on create. */
export interface MachineInput {
  macs?: string[];
  hostname?: string | null;
  uuid?: string | null;
  site?: string | null;
  labels?: Record<string, string>;
  /** Some labels set (a string) or removed (null), the others kept; `labels` replaces them all. */
  labelChanges?: Record<string, string | null>;
  state?: MachineState;
  image?: Partial<ImageSelector>;
  kernelArgs?: string;
  vars?: Record<string, string>;
  /** As labelChanges, for vars. */
  varChanges?: Record<string, string | null>;
  ip?: string | null;
  subnet?: string | null;
  secureBoot?: SecureBoot | null;
}

export interface MachineFilter {
  state?: MachineState;
  site?: string;
  labels?: Record<string, string>;
  limit?: number;
  /** Facts every machine listed has (`memory_gb>=256`). */
  facts?: FactFilter[];
  /** Return machines with id greater than this (keyset pagination). */
  after?: number;
}

export interface PoolRange {
  start: string;
  end: string;
}

export interface Subnet {
  id: number;
  name: string;
  cidr: string;
  gateway: string | null;
  dns: string[];
  domain: string | null;
  pools: PoolRange[];
  leaseSeconds: number;
  policy: UnknownMacPolicy;
  /** What an unknown machine under policy `discover` is told: retry later, or exit to local boot. */
  discoverAction: 'retry' | 'exit';
  defaultImage: { name: string | null; channel: string | null };
  /** null: boot.secureBoot. */
  secureBoot: SecureBoot | null;
  createdAt: string;
  updatedAt: string;
}

export interface SubnetInput {
  name?: string;
  cidr?: string;
  gateway?: string | null;
  dns?: string[];
  domain?: string | null;
  pools?: PoolRange[];
  leaseSeconds?: number;
  policy?: UnknownMacPolicy;
  discoverAction?: 'retry' | 'exit';
  defaultImage?: { name?: string | null; channel?: string | null };
  secureBoot?: SecureBoot | null;
}

export interface LivEvent {
  id: number;
  at: string;
  type: string;
  mac: string | null;
  machineId: number | null;
  imageId: string | null;
  detail: Record<string, unknown>;
}

export interface EventInput {
  type: string;
  mac?: string | null;
  machineId?: number | null;
  imageId?: string | null;
  detail?: Record<string, unknown>;
  /** Milliseconds since the epoch; defaults to now. */
  at?: number;
}

export interface ApiToken {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** Who made a change: a token name, `cli:bootstrap`, or `dhcp` for automatic discovery. */
export type Actor = string;

export interface FleetStats {
  machinesByState: { state: string; n: number }[];
  leasesBySubnet: { subnet: string; state: string; n: number }[];
  /** Addresses in each subnet's dynamic pools, and how many of them a live lease holds. */
  pools: { subnet: string; size: number; leased: number }[];
  images: number;
  /** Bytes of the distinct blobs the catalog's images need. */
  catalogBytes: number;
}

export interface ImageArtifact {
  name: string;
  role: ArtifactRole;
  size: number;
  sha256: string;
}

/** What lists show: everything but the (possibly large) recipe and package list. */
export interface ImageSummary {
  id: string;
  name: string;
  version: string;
  os: string;
  arch: string;
  /** When the builder made it (from the manifest). */
  createdAt: string;
  /** When this catalog accepted it. */
  publishedAt: string;
  kernelArgs: string;
  artifacts: ImageArtifact[];
}

export interface Image extends ImageSummary {
  recipe: string;
  manifest: ImageManifest;
}

export interface Channel {
  name: string;
  channel: string;
  imageId: string;
  version: string;
  updatedAt: string;
}

export interface ChannelChange {
  id: number;
  name: string;
  channel: string;
  action: 'promote' | 'rollback';
  imageId: string;
  previousImageId: string | null;
  actor: string | null;
  at: string;
}

/** Who still points at an image: the reasons it may not be deleted. */
export interface ImageReferences {
  channels: string[];
  machines: string[];
}
