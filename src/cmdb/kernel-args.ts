/**
 * What an operator or an image publisher may put on a kernel command line. Livery writes its
 * own parameters first (BOOTIF, initrd=, livery.*); the initrd and the agent trust them, so
 * user arguments may not repeat or override them. Every boot loader livery renders for reads
 * the line differently (iPXE expands ${...}, a newline ends a pxelinux directive), so the
 * line must be one line of printable text that means the same to all of them.
 */
const MAX_LENGTH = 4096;

/** Words livery puts on every kernel line; `livery.` is a namespace (flags included). */
export function isLiveryParameter(word: string): boolean {
  const key = word.split('=', 1)[0]!.toLowerCase();
  return key.startsWith('livery.') || key === 'livery' || key === 'bootif' || key === 'initrd';
}

/** Why `text` cannot be used as user kernel arguments, or null when it can. */
export function kernelArgsProblem(text: string): string | null {
  if (text.length > MAX_LENGTH) return `must be at most ${MAX_LENGTH} characters`;
  if (/[\x00-\x1f\x7f]/.test(text)) return 'must be one line of printable characters (no newlines, tabs or other control characters)';
  if (text.includes('${')) return 'must not contain "${" (iPXE would expand it; kernel arguments are passed literally)';
  const reserved = text.split(' ').filter((w) => w !== '' && isLiveryParameter(w));
  if (reserved.length > 0) return `${reserved.map((w) => w.split('=', 1)[0]).join(', ')}: livery sets BOOTIF, initrd= and livery.* itself; remove them`;
  return null;
}

/** The words of stored kernel arguments that livery will pass on, and those it drops as its own. */
export function splitUserKernelArgs(text: string): { kept: string[]; dropped: string[] } {
  const words = text.split(/\s+/).filter((w) => w !== '');
  return { kept: words.filter((w) => !isLiveryParameter(w)), dropped: words.filter(isLiveryParameter) };
}
