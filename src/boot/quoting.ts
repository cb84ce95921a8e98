/**
 * How a value is written into each template language so that it stays data: whatever an
 * operator, a publisher or a client put into it, it cannot add, end or comment out a command.
 * Templates are picked by folder (ipxe/, grub/, pxelinux/, cloud-init/), and every value a
 * template reads is quoted for its folder's language (see quotedView).
 */
export type TemplateLanguage = 'ipxe' | 'grub' | 'pxelinux' | 'cloud-init';

/** A value that the language cannot carry literally; the render fails instead of guessing. */
export class QuotingError extends Error {
  override name = 'QuotingError';
}

// Every control character separates words or lines in some loader (iPXE splits lines at \n
// and words at any isspace(); pxelinux and GRUB end a directive or command at a newline).
const SEPARATORS = /[\s\x00-\x1f\x7f]+/;
const words = (value: string) => value.split(SEPARATORS).filter((w) => w !== '');

/**
 * iPXE has no quoting: a line is split at whitespace, a word that is exactly `;`, `&&` or `||`
 * ends the command, a word starting with `#` starts a comment, a line ending in `\` continues
 * on the next, and `${name}` in a word is expanded after the split (core/exec.c, image/script.c).
 * An empty expansion `${}` is the one neutral mark: prefixed to such a word it stops the word
 * from being read as an operator, comment or option (`-`), appended it keeps a final `\` from
 * joining lines, and it expands to nothing. A literal `${` cannot be written at all.
 */
function ipxeWord(word: string): string {
  if (word.includes('${')) throw new QuotingError(`${JSON.stringify(word)} cannot be written in an iPXE script (iPXE expands \${...})`);
  let out = word;
  if (out === ';' || out === '&&' || out === '||' || out.startsWith('#') || out.startsWith('-')) out = `\${}${out}`;
  if (out.endsWith('\\')) out = `${out}\${}`;
  return out;
}

/**
 * GRUB reads grub.cfg like a Bourne shell: `{ } | & $ ; < >`, quotes, `#` and whitespace are
 * special, and `* ? [` expand as wildcards once the regexp module is loaded. A backslash keeps
 * the next character literal outside quotes, and inside double quotes escapes exactly the
 * characters that are special there (`$ " \`), so a value quoted this way is safe both as bare
 * words and inside "...". (Never inside '...', where a backslash is literal.)
 */
function grubWord(word: string): string {
  return word.replace(/[^A-Za-z0-9._:/,=+@%~()-]/g, (c) => `\\${c}`);
}

/**
 * YAML (cloud-init): every value is a double-quoted scalar. JSON's string syntax is YAML's, so
 * it can never start a new line, key or document, and a value such as a MAC made of digits and
 * colons stays a string (YAML 1.1 would read it as a base-60 number).
 */
const yamlScalar = (value: string) => JSON.stringify(value);

/** Quotes one string value for a language. */
export const QUOTE: Record<TemplateLanguage, (value: string) => string> = {
  ipxe: (value) => words(value).map(ipxeWord).join(' '),
  grub: (value) => words(value).map(grubWord).join(' '),
  // pxelinux directives run to the end of the line and have no quoting; only a line break is special.
  pxelinux: (value) => words(value).join(' '),
  'cloud-init': yamlScalar,
};

/** The language of a template, from its folder; null for a folder livery does not render. */
export function templateLanguage(name: string): TemplateLanguage | null {
  const folder = name.split('/', 1)[0]!;
  return folder in QUOTE ? (folder as TemplateLanguage) : null;
}

/**
 * A read-only view of template data in which every string is quoted as it is read. Quoting on
 * read, not up front, means a value the template never uses (say, a var that iPXE could not
 * carry) cannot fail the render.
 */
export function quotedView<T extends object>(data: T, quote: (value: string) => string): T {
  return new Proxy(data, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value === 'string') return quote(value);
      if (typeof value === 'object' && value !== null) return quotedView(value, quote);
      return value;
    },
    set: () => false,
  });
}
