import type { HealthSpec } from '../health/spec.js';

/** Where a recipe item came from, so build errors can point back at the recipe line. */
export interface Origin {
  file: string;
  line: number;
}

export interface RecipeBase {
  distribution: 'debian';
  suite: string;
  arch: string;
  components: string[];
}

export interface RecipeUser {
  name: string;
  sshKeys: string[];
  sudo: boolean;
  /** crypt(3) hash; absent means the password is locked (ssh keys only). */
  passwordHash?: string;
  uid?: number;
  groups: string[];
  shell: string;
  origin: Origin;
}

export type RootPassword = { locked: true } | { locked: false; hash: string };

export interface FirewallAllow {
  protocol: 'tcp' | 'udp';
  fromPort: number;
  toPort: number;
}

export interface RecipeFile {
  /** Absolute path on the build machine, inside the declaring recipe's folder. */
  source: string;
  /** Absolute, normalised path inside the image. */
  dest: string;
  mode: number;
  owner: string;
  group: string;
  origin: Origin;
}

export interface RecipeOverlay {
  source: string;
  origin: Origin;
}

export interface PostScript {
  interpreter: string;
  body: string;
  origin: Origin;
}

/** A recipe with its includes resolved and merged: what the builder consumes. */
export interface Recipe {
  /** Absolute path of the top-level recipe file. */
  file: string;
  name: string;
  version?: string;
  base: RecipeBase;
  mirror?: string;
  /** Sorted, unique package names after `-pkg` removals. */
  packages: string[];
  /** Packages named with `-pkg`: kept out of the image even when something else pulls them in. */
  removedPackages: string[];
  users: RecipeUser[];
  rootPassword: RootPassword;
  timezone: string;
  locale: string;
  services: { enable: string[]; disable: string[] };
  firewall: { allow: FirewallAllow[]; ruleset?: string };
  files: RecipeFile[];
  overlays: RecipeOverlay[];
  post: PostScript[];
  kernelArgs: string;
  /** `health` lines: what the agent checks after boot before it reports the machine healthy. */
  health: HealthSpec;
  /** The recipe text with every %include replaced by the included text. */
  text: string;
}
