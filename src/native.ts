import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Loads one of livery's own addons from native/build (src/ and dist/ are both one level below
 * the repository). A missing build stops the caller with what to do about it, not a bare
 * "cannot find module".
 */
export function loadAddon<T>(name: string, purpose: string): T {
  const path = fileURLToPath(new URL(`../native/build/Release/${name}.node`, import.meta.url));
  if (!existsSync(path)) {
    throw new Error(`${purpose} is a native addon and ${path} is missing: run \`make build\` (it needs python3, make and g++)`);
  }
  return createRequire(import.meta.url)(path) as T;
}
