import type { HealthCheck } from '../health/spec.js';
import type { FirewallAllow, Origin, PostScript, RecipeBase, RecipeFile, RecipeOverlay, RecipeUser, RootPassword } from './recipe-types.js';

/** Settings that hold one value; an including recipe overrides what it includes. */
export interface Scalars {
  name?: string;
  version?: string;
  base?: RecipeBase;
  mirror?: string;
  rootPassword?: RootPassword;
  timezone?: string;
  locale?: string;
  healthTimeout?: number;
}

/** What one file contributes, its includes already folded in. */
export interface Layer {
  scalars: Scalars;
  packageOps: { name: string; remove: boolean }[];
  users: RecipeUser[];
  enable: string[];
  disable: string[];
  allow: FirewallAllow[];
  ruleset?: { text: string; origin: Origin };
  files: RecipeFile[];
  overlays: RecipeOverlay[];
  post: PostScript[];
  kernelArgs: string[];
  healthChecks: HealthCheck[];
  text: string;
}

export const emptyLayer = (): Layer => ({
  scalars: {},
  packageOps: [],
  users: [],
  enable: [],
  disable: [],
  allow: [],
  files: [],
  overlays: [],
  post: [],
  kernelArgs: [],
  healthChecks: [],
  text: '',
});

/** Adds `from` after what `into` holds; `from`'s scalars win. */
export function fold(into: Layer, from: Layer): void {
  for (const [k, val] of Object.entries(from.scalars)) if (val !== undefined) (into.scalars as Record<string, unknown>)[k] = val;
  into.packageOps.push(...from.packageOps);
  into.users.push(...from.users);
  into.enable.push(...from.enable);
  into.disable.push(...from.disable);
  into.allow.push(...from.allow);
  if (from.ruleset) into.ruleset = from.ruleset;
  into.files.push(...from.files);
  into.overlays.push(...from.overlays);
  into.post.push(...from.post);
  into.kernelArgs.push(...from.kernelArgs);
  into.healthChecks.push(...from.healthChecks);
}

