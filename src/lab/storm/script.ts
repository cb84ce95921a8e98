/** What a machine takes from its iPXE boot script: where its files are and which image it is. */
export interface BootTargets {
  kernelUrl: string;
  initrdUrl: string;
  /** `livery.rootfs=` on the kernel line: the initrd fetches it after boot. */
  rootfsUrl: string;
  /** `livery.image=` on the kernel line. */
  imageId: string;
}

export type ScriptParse = { ok: true; targets: BootTargets } | { ok: false; error: string };

// iPXE image options that take a value as the next word (`--name vmlinuz`); `--name=x` is one word.
const VALUE_OPTIONS = new Set(['--name', '-n', '--timeout', '-t']);

/**
 * Reads the kernel and initrd commands of an iPXE script as iPXE would: command, options, URL,
 * then (for the kernel) the command line up to `||`. Pure; any text gives a result.
 */
export function parseBootScript(text: string): ScriptParse {
  if (!text.startsWith('#!ipxe')) return { ok: false, error: `not an iPXE script: ${JSON.stringify(text.slice(0, 60))}` };
  const commands = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    const name = words[0];
    if ((name === 'kernel' || name === 'initrd') && !commands.has(name)) commands.set(name, argumentsOf(words.slice(1)));
  }
  const kernel = commands.get('kernel');
  const initrd = commands.get('initrd');
  if (!kernel?.length || !initrd?.length) {
    // A wait or exit script says why on the console: pass that on.
    const echoed = /^echo (.*)$/m.exec(text)?.[1];
    return { ok: false, error: `script boots nothing${echoed ? `: ${echoed}` : ''}` };
  }
  const arg = (key: string) => kernel.slice(1).find((w) => w.startsWith(`${key}=`))?.slice(key.length + 1);
  const rootfsUrl = arg('livery.rootfs');
  const imageId = arg('livery.image');
  if (!rootfsUrl || !imageId) return { ok: false, error: `kernel line lacks ${rootfsUrl ? '' : 'livery.rootfs= '}${imageId ? '' : 'livery.image='}`.trim() };
  return { ok: true, targets: { kernelUrl: kernel[0]!, initrdUrl: initrd[0]!, rootfsUrl, imageId } };
}

/** The words after a command's options, up to `||` or a comment: the URL first, then its arguments. */
function argumentsOf(words: string[]): string[] {
  let at = 0;
  while (at < words.length && words[at]!.startsWith('-')) at += VALUE_OPTIONS.has(words[at]!) ? 2 : 1;
  const end = words.findIndex((w, i) => i >= at && (w === '||' || w === '&&' || w.startsWith('#')));
  return words.slice(at, end === -1 ? undefined : end);
}
