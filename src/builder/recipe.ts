import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_HEALTH_TIMEOUT_SECONDS } from '../health/spec.js';
import { parseFile, RecipeError } from './recipe-file.js';
import type { Recipe } from './recipe-types.js';

export type * from './recipe-types.js';
export { RecipeError };

/**
 * Reads a recipe and everything it includes; throws RecipeError for any problem. `path` is
 * the recipe file or an image folder holding one named `recipe` (`images/minimal`).
 */
export function parseRecipe(path: string): Recipe {
  const file = isDirectory(path) ? join(resolve(path), 'recipe') : resolve(path);
  const layer = parseFile(file, []);
  const lines = layer.text.split('\n').length;
  const s = layer.scalars;
  if (s.name === undefined) throw new RecipeError(file, lines, "missing 'name' directive (expected e.g. 'name minimal')");
  if (s.base === undefined) throw new RecipeError(file, lines, "missing 'base' directive (expected e.g. 'base debian bookworm amd64')");
  if (layer.ruleset && layer.allow.length > 0) {
    throw new RecipeError(layer.ruleset.origin.file, layer.ruleset.origin.line, "a %firewall ruleset cannot be combined with 'firewall --allow' (use one or the other)");
  }
  const removed = new Set<string>();
  const packages = new Set<string>();
  for (const op of layer.packageOps) {
    if (op.remove) {
      packages.delete(op.name);
      removed.add(op.name);
    } else {
      packages.add(op.name);
      removed.delete(op.name);
    }
  }
  return {
    file,
    name: s.name,
    ...(s.version !== undefined ? { version: s.version } : {}),
    base: s.base,
    ...(s.mirror !== undefined ? { mirror: s.mirror } : {}),
    packages: [...packages].sort(),
    removedPackages: [...removed].sort(),
    users: layer.users,
    rootPassword: s.rootPassword ?? { locked: true },
    timezone: s.timezone ?? 'UTC',
    locale: s.locale ?? 'C.UTF-8',
    services: { enable: layer.enable, disable: layer.disable },
    firewall: { allow: layer.allow, ...(layer.ruleset ? { ruleset: layer.ruleset.text } : {}) },
    files: layer.files,
    overlays: layer.overlays,
    post: layer.post,
    kernelArgs: layer.kernelArgs.join(' '),
    health: { timeoutSeconds: s.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT_SECONDS, checks: layer.healthChecks },
    text: layer.text,
  };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
