import type { Command } from 'commander';

/** Each command path ("", "machine", "machine set") with the words that may follow it: subcommands and long options. */
function wordsByPath(cmd: Command, path: string[] = [], out = new Map<string, string[]>()): Map<string, string[]> {
  const words = [...cmd.commands.map((c) => c.name()), ...cmd.options.map((o) => o.long).filter((l): l is string => Boolean(l)), '--help'];
  out.set(path.join(' '), words);
  for (const sub of cmd.commands) wordsByPath(sub, [...path, sub.name()], out);
  return out;
}

/**
 * A bash completion script made from the command tree itself, so it never falls behind the
 * CLI: the words typed so far that name commands pick the list of what may come next.
 */
export function bashCompletion(program: Command): string {
  const cases = [...wordsByPath(program)].map(([path, words]) => `    ${JSON.stringify(path)}) words=${JSON.stringify(words.join(' '))} ;;`).join('\n');
  return `# livery bash completion: source <(livery completion bash)
_livery() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path= w words
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in -*) ;; *) case "\${path:+$path }$w" in ${[...wordsByPath(program).keys()].filter(Boolean).map((p) => JSON.stringify(p)).join('|')}) path="\${path:+$path }$w" ;; esac ;; esac
  done
  case "$path" in
${cases}
    *) words= ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _livery livery
`;
}

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script')
    .argument('<shell>', 'bash')
    .action((shell: string) => {
      if (shell !== 'bash') throw new Error(`completion: only bash is supported, got '${shell}'`);
      process.stdout.write(bashCompletion(program));
    });
}
