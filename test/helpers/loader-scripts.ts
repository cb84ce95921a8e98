/**
 * How boot loaders read what livery renders, written from their sources so tests can see a
 * rendered file as the loader would: iPXE's script reader and command splitter
 * (src/image/script.c, src/core/exec.c) and GRUB's shell-like lexer (the manual's "Shell-like
 * scripting"). Each returns the commands with their arguments after quoting is removed.
 */

export interface LoaderCommand {
  argv: string[];
}

/** iPXE: lines (a final `\` joins the next), `:label` lines, whitespace words, `;` `&&` `||`, `#` comments, `${}` expanding to nothing. */
export function ipxeCommands(script: string): { commands: LoaderCommand[]; labels: string[] } {
  const commands: LoaderCommand[] = [];
  const labels: string[] = [];
  const lines: string[] = [];
  let pending = '';
  for (let line of script.split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1);
      continue;
    }
    lines.push(pending + line);
    pending = '';
  }
  for (const raw of lines) {
    let line = raw.replace(/^[ \t\v\f\r]+/, '');
    if (line.startsWith(':')) {
      const m = /^:(\S*)\s*(.*)$/.exec(line)!;
      labels.push(m[1]!);
      line = m[2]!;
    }
    let argv: string[] = [];
    for (const token of line.split(/[ \t\n\v\f\r]+/).filter((t) => t !== '')) {
      if (token.startsWith('#')) break;
      if (token === ';' || token === '&&' || token === '||') {
        if (argv.length) commands.push({ argv });
        argv = [];
        continue;
      }
      argv.push(expandIpxe(token));
    }
    if (argv.length) commands.push({ argv });
  }
  return { commands, labels };
}

/** iPXE's settings expansion: innermost `${name}` first, repeated; only the empty name is known here. */
function expandIpxe(token: string): string {
  let out = token;
  for (;;) {
    const end = out.indexOf('}');
    const start = end === -1 ? -1 : out.lastIndexOf('${', end);
    if (start === -1) return out;
    const name = out.slice(start + 2, end);
    out = out.slice(0, start) + (name === '' ? '' : `<setting ${name}>`) + out.slice(end + 1);
  }
}

/**
 * GRUB: words split at blanks, commands at newlines and `;`; `\x` is x, '...' literal,
 * "..." literal except `\$ \" \\`; `#` at the start of a word comments out the line; `{` and
 * `}` are words of their own. An unquoted `$ | & < > * ? [` is returned as `<c>` so a test
 * sees an expansion, pipe, redirection or wildcard that the quoting let through.
 */
export function grubCommands(text: string): LoaderCommand[] {
  const commands: LoaderCommand[] = [];
  let argv: string[] = [];
  let word: string | null = null;
  const endWord = () => {
    if (word !== null) argv.push(word);
    word = null;
  };
  const endCommand = () => {
    endWord();
    if (argv.length) commands.push({ argv });
    argv = [];
  };
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === '\\') {
      if (text[i + 1] !== '\n') word = (word ?? '') + (text[i + 1] ?? '');
      i += 2;
    } else if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close === -1) throw new Error('unterminated single quote');
      word = (word ?? '') + text.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      let w = '';
      for (i++; text[i] !== '"'; ) {
        if (i >= text.length) throw new Error('unterminated double quote');
        if (text[i] === '\\' && '$"\\\n'.includes(text[i + 1]!)) {
          if (text[i + 1] !== '\n') w += text[i + 1];
          i += 2;
        } else if (text[i] === '$') {
          w += '<$>';
          i++;
        } else w += text[i++];
      }
      word = (word ?? '') + w;
      i++;
    } else if (c === '#' && word === null) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === ' ' || c === '\t') {
      endWord();
      i++;
    } else if (c === '\n' || c === ';') {
      endCommand();
      i++;
    } else if (c === '{' || c === '}') {
      endWord();
      argv.push(c);
      endCommand();
      i++;
    } else if ('$|&<>*?['.includes(c)) {
      word = (word ?? '') + `<${c}>`;
      i++;
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  endCommand();
  return commands;
}
