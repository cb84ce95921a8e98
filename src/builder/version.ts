import { readdirSync } from 'node:fs';

/** File name of a bundle in the output folder. */
export function bundleFileName(name: string, version: string): string {
  return `${name}-${version}.tar`;
}

/**
 * The next automatic version for `name`: the UTC date plus a counter one above the highest
 * counter already used that day by a bundle in `existing` (file names in the output folder).
 */
export function nextVersion(name: string, existing: string[], now: Date): string {
  const day = `${now.getUTCFullYear()}.${String(now.getUTCMonth() + 1).padStart(2, '0')}.${String(now.getUTCDate()).padStart(2, '0')}`;
  const prefix = `${name}-${day}.`;
  let highest = 0;
  for (const file of existing) {
    if (!file.startsWith(prefix) || !file.endsWith('.tar')) continue;
    const counter = file.slice(prefix.length, -'.tar'.length);
    if (/^[0-9]+$/.test(counter)) highest = Math.max(highest, Number(counter));
  }
  return `${day}.${highest + 1}`;
}

export function listBundles(outDir: string): string[] {
  try {
    return readdirSync(outDir);
  } catch {
    return [];
  }
}
