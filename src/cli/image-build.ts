import type { Command } from 'commander';
import { resolve } from 'node:path';
import { choice } from './choices.js';
import { CliError } from './client.js';
import { wholeNumber } from './numbers.js';
import { globals } from './context.js';
import { printJson } from './output.js';

type Publish = (cmd: Command, file: string, channel: string | undefined) => Promise<{ id: string; name: string; version: string }>;

interface BuildFlags {
  out: string;
  cacheDir: string;
  keepBases: number;
  mirror?: string;
  compression: 'xz' | 'zstd';
  version?: string;
  publish?: boolean;
  channel?: string;
}

/** `livery image build`: a recipe in images/ → a bundle, optionally published to a server. */
export function registerImageBuild(image: Command, publish: Publish): void {
  image
    .command('build')
    .description('build a live image from a recipe (needs root for the Debian bootstrap)')
    .argument('<recipe>', 'an image folder (images/minimal) or a recipe file')
    .option('--out <dir>', 'where the bundle is written', 'build')
    .option('--cache-dir <dir>', 'cache of bootstrapped bases, reused while the package set is unchanged', '/var/cache/livery/builder')
    .option('--keep-bases <n>', 'bootstrapped bases kept in the cache, most recently used first', (v) => wholeNumber('--keep-bases', v, 1, 100), 3)
    .option('--mirror <url>', "Debian mirror (default: the recipe's, else this machine's apt mirror)")
    .addOption(choice('--compression <kind>', 'squashfs compression', ['xz', 'zstd']).default('xz'))
    .option('--version <version>', 'image version (default: date and counter)')
    .option('--publish', 'publish the bundle to the server (--url / LIVERY_URL) when the build succeeds')
    .option('--channel <channel>', 'with --publish: point this channel at the new image')
    .action(async (recipe: string, flags: BuildFlags, cmd: Command) => {
      if (flags.channel && !flags.publish) throw new CliError('--channel goes with --publish');
      // Loaded only here: the builder is heavy and most commands never need it.
      const { buildImage, BuildError, PreflightError, RecipeError } = await import('../builder/index.js');
      const started = Date.now();
      const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s]`;
      let result;
      try {
        result = await buildImage({
          recipePath: resolve(recipe),
          outDir: resolve(flags.out),
          cacheDir: resolve(flags.cacheDir),
          keepBases: flags.keepBases,
          mirror: flags.mirror,
          compression: flags.compression,
          version: flags.version,
          onStep: (e) => {
            if (e.state === 'start') process.stderr.write(`${stamp()} ${e.step} …\n`);
            else process.stderr.write(`${stamp()} ${e.step} ${e.state} in ${(e.elapsedMs / 1000).toFixed(1)} s\n`);
          },
        });
      } catch (err) {
        if (err instanceof BuildError || err instanceof PreflightError || err instanceof RecipeError) throw new CliError(err.message);
        throw err;
      }
      const sizes = Object.fromEntries(result.manifest.artifacts.map((a) => [a.name, a.size]));
      const published = flags.publish ? await publish(cmd, result.bundlePath, flags.channel) : null;
      if (globals(cmd).json) return printJson({ bundle: result.bundlePath, manifest: result.manifest, timings: result.timings, published });
      const mib = (n: number | undefined) => `${((n ?? 0) / 2 ** 20).toFixed(1)} MiB`;
      console.log(`built ${result.manifest.name} ${result.manifest.version} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${result.bundlePath}`);
      console.log(`  kernel ${mib(sizes['vmlinuz'])}, initrd ${mib(sizes['initrd.img'])}, rootfs ${mib(sizes['rootfs.squashfs'])}; log ${result.logPath}`);
      if (published) console.log(`published as ${published.id}${flags.channel ? ` on channel ${flags.channel}` : ''}`);
    });
}
