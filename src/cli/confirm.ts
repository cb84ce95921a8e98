import { createInterface } from 'node:readline/promises';
import { CliError } from './client.js';

/**
 * Asks before something that cannot be undone. `--yes` answers for scripts; without a terminal
 * and without `--yes` the command is refused rather than taken as agreed.
 */
export async function confirm(what: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) throw new CliError(`${what}: refused without --yes (no terminal to ask on)`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${what}? [y/N] `);
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw new CliError(`${what}: not confirmed, nothing changed`);
}
