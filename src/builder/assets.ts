import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Folder of the shell scripts and units the builder puts into images and initrds. They live
 * beside this module in src/; the compiled module in dist/ (which tsc does not copy them to)
 * falls back to the source tree.
 */
function assetsDir(): string {
  const candidates = [new URL('./assets/', import.meta.url), new URL('../../src/builder/assets/', import.meta.url)].map((u) => fileURLToPath(u));
  const found = candidates.find((dir) => existsSync(`${dir}init.sh`));
  if (found === undefined) throw new Error(`builder assets not found (looked in ${candidates.join(', ')})`);
  return found;
}

export const ASSETS = {
  init: () => `${assetsDir()}init.sh`,
  /** Sourced by init.sh and the agent: reads livery's parameters off the kernel command line. */
  cmdline: () => `${assetsDir()}cmdline.sh`,
  udhcpcScript: () => `${assetsDir()}udhcpc.sh`,
  agent: () => `${assetsDir()}livery-agent.sh`,
  /** Run by the agent: the hardware facts report. */
  facts: () => `${assetsDir()}livery-facts.sh`,
  agentUnit: () => `${assetsDir()}livery-agent.service`,
  sshHostKeys: () => `${assetsDir()}ssh-hostkeys.conf`,
};
