import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Whether an EFI binary (the image's kernel) carries an Authenticode signature, as
 * `sbverify --list` (sbsigntool) lists them: "signature 1", ... for each one, nothing for an
 * unsigned PE file, an error for a file that is no PE at all (also unsigned, for Secure Boot).
 * Which key signed it is for the firmware to judge; Debian's kernels are signed by Debian's
 * key, which shim trusts.
 */
export async function hasEfiSignature(path: string): Promise<boolean> {
  try {
    const { stdout } = await execFileAsync('sbverify', ['--list', path], { maxBuffer: 1024 * 1024 });
    return /^signature \d+/m.test(stdout);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('sbverify not found: install the Debian package sbsigntool');
    return false;
  }
}
