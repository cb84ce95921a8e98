/**
 * Splits one recipe line into words, shell-style but without any expansion: whitespace
 * separates words, '...' keeps everything literally, "..." keeps everything but lets \" and \\
 * through, and a # at the start of a word starts a comment (so URLs and ssh key comments
 * that contain # inside a word survive).
 */
export type SplitResult = { ok: true; words: string[] } | { ok: false; error: string };

export function splitWords(line: string): SplitResult {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && isSpace(line[i]!)) i++;
    if (i >= line.length || line[i] === '#') break;
    let word = '';
    while (i < line.length && !isSpace(line[i]!)) {
      const c = line[i]!;
      if (c === "'") {
        const end = line.indexOf("'", i + 1);
        if (end < 0) return { ok: false, error: "unterminated ' quote (expected a closing ')" };
        word += line.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        i++;
        let closed = false;
        while (i < line.length) {
          const d = line[i]!;
          if (d === '"') {
            closed = true;
            i++;
            break;
          }
          if (d === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
            word += line[i + 1];
            i += 2;
          } else {
            word += d;
            i++;
          }
        }
        if (!closed) return { ok: false, error: 'unterminated " quote (expected a closing ")' };
      } else {
        word += c;
        i++;
      }
    }
    words.push(word);
  }
  return { ok: true, words };
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t';
}
