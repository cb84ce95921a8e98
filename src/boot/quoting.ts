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

/** How each loader language writes a value: word by word, by the rules above. */
export const QUOTE_BY_WORD = {
  ipxe: (value: string) => words(value).map(ipxeWord).join(' '),
  grub: (value: string) => words(value).map(grubWord).join(' '),
  // pxelinux directives run to the end of the line and have no quoting; only a line break is special.
  pxelinux: (value: string) => words(value).join(' '),
};

/**
 * Values each loader language carries as they are: one word of characters none of its rules
 * touches. Most template values (MACs, URLs, ids, names) are such words, and a boot script reads
 * a dozen: one test is a fraction of splitting and rejoining them.
 */
const PLAIN: Record<keyof typeof QUOTE_BY_WORD, RegExp> = {
  // Not starting with '-' (an option) or '#' (a comment); no '$', '\\', ';', '&' or '|'.
  ipxe: /^[A-Za-z0-9._:/,=+@%~?()][A-Za-z0-9._:/,=+@%~?()-]*$/,
  grub: /^[A-Za-z0-9._:/,=+@%~()-]+$/,
  pxelinux: /^[^\s\x00-\x1f\x7f]+$/,
};

const plainOr = (language: keyof typeof QUOTE_BY_WORD) => (value: string) => (PLAIN[language].test(value) ? value : QUOTE_BY_WORD[language](value));

/** Quotes one string value for a language. */
export const QUOTE: Record<TemplateLanguage, (value: string) => string> = {
  ipxe: plainOr('ipxe'),
  grub: plainOr('grub'),
  pxelinux: plainOr('pxelinux'),
  'cloud-init': yamlScalar,
};

/** The language of a template, from its folder; null for a folder livery does not render. */
export function templateLanguage(name: string): TemplateLanguage | null {
  const folder = name.split('/', 1)[0]!;
  return folder in QUOTE ? (folder as TemplateLanguage) : null;
}

/**
 * A copy of the `keys` of template data (all when null), every string in them quoted, made
 * before the render: Handlebars then reads plain properties. (A Proxy that quoted on each read
 * cost more than the render.) A value that cannot be quoted becomes a property that throws when
 * read, so a value the template never uses (say, a var that iPXE could not carry) cannot fail
 * the render.
 */
export function quotedCopy<T extends object>(data: T, quote: (value: string) => string, keys: ReadonlySet<string> | null = null): T {
  return copyObject(data as Record<string, unknown>, quote, keys) as T;
}

function copyObject(value: Record<string, unknown>, quote: (value: string) => string, keys: ReadonlySet<string> | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys ?? Object.keys(value)) {
    if (!Object.hasOwn(value, key)) continue;
    try {
      out[key] = copy(value[key], quote);
    } catch (err) {
      if (!(err instanceof QuotingError)) throw err;
      Object.defineProperty(out, key, { enumerable: true, get: () => { throw err; } });
    }
  }
  return out;
}

function copy(value: unknown, quote: (value: string) => string): unknown {
  if (typeof value === 'string') return quote(value);
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => copy(v, quote));
  return copyObject(value as Record<string, unknown>, quote, null);
}
