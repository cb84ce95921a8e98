import type { StepRunner } from './steps.js';

export type Compression = 'xz' | 'zstd';

/**
 * Compressor settings. zstd level 9 packs a minimal image in seconds at a few percent above
 * level 15, which takes ten times as long; xz (with the x86 filter for executables) gives the
 * smallest squashfs for images where size matters more than build time.
 */
const COMPRESSOR_ARGS: Record<Compression, string[]> = {
  zstd: ['-comp', 'zstd', '-Xcompression-level', '9', '-b', '1M'],
  xz: ['-comp', 'xz', '-Xbcj', 'x86', '-b', '1M'],
};

/**
 * Packs an image root as a reproducible squashfs: mksquashfs sorts directories itself, and
 * every timestamp (files and the filesystem's own) is set to the build epoch.
 */
export async function makeSquashfs(runner: StepRunner, root: string, outPath: string, compression: Compression, epoch: number): Promise<void> {
  await runner.run('mksquashfs', [
    root,
    outPath,
    '-noappend',
    ...COMPRESSOR_ARGS[compression],
    '-all-time',
    String(epoch),
    '-mkfs-time',
    String(epoch),
    '-no-progress',
  ]);
}
