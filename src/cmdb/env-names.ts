import { invalid } from './errors.js';

/**
 * Label keys and var names become shell variables in the metadata env format
 * (LIVERY_LABEL_<NAME>, LIVERY_VAR_<NAME>): upper case, every other character `_`. That is
 * readable but not one-to-one (`a.b`, `a-b` and `A.B` all give A_B), so a machine may not
 * have two keys of one kind that give the same name: the env file could carry only one.
 */
export function envName(key: string): string {
  return key.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

/** Keys of `map` grouped by the env name they share, only where two or more share one. */
export function envNameCollisions(map: Record<string, unknown>): Map<string, string[]> {
  const byName = new Map<string, string[]>();
  for (const key of Object.keys(map)) byName.set(envName(key), [...(byName.get(envName(key)) ?? []), key]);
  return new Map([...byName].filter(([, keys]) => keys.length > 1));
}

/** Returns `map` unchanged, or throws naming the keys that would share an env variable. */
export function checkDistinctEnvNames<T extends Record<string, unknown>>(field: string, prefix: string, map: T): T {
  const [first] = envNameCollisions(map);
  if (first) {
    const [name, keys] = first;
    throw invalid(field, `keys ${keys.map((k) => JSON.stringify(k)).join(' and ')} would both be LIVERY_${prefix}_${name} in the metadata env format; rename one`);
  }
  return map;
}
