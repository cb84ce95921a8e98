type Node = hbs.AST.Node;

/** Helpers that run their block in the same context: `this` inside them is still the root. */
const SAME_CONTEXT = new Set(['if', 'unless']);

/**
 * The top-level keys of its data a template can read, or null when it may read any (it names
 * the root as a whole: `this` at the top, `../`, `@root`). Every name in any path counts, at
 * any depth: reading too many keys costs a little time, missing one would change the output.
 */
export function rootKeysRead(program: hbs.AST.Program): Set<string> | null {
  const keys = new Set<string>();
  let whole = false;
  const visit = (value: unknown, atRoot: boolean): void => {
    if (whole || typeof value !== 'object' || value === null) return;
    if (Array.isArray(value)) {
      for (const v of value) visit(v, atRoot);
      return;
    }
    const node = value as Node;
    if (node.type === 'PathExpression') {
      const path = node as hbs.AST.PathExpression;
      const [head, next] = path.parts;
      if (path.data) {
        if (head === 'root') next === undefined ? (whole = true) : keys.add(next);
      } else if (head === undefined) {
        if (atRoot || path.depth > 0) whole = true;
      } else keys.add(head);
      return;
    }
    if (node.type === 'BlockStatement') {
      const block = node as hbs.AST.BlockStatement;
      const helper = (block.path as hbs.AST.PathExpression).original;
      visit(block.path, atRoot);
      visit(block.params, atRoot);
      visit(block.hash, atRoot);
      // each, with and a section over a value run their block in another context; else-blocks do not.
      visit(block.program, atRoot && SAME_CONTEXT.has(helper));
      visit(block.inverse, atRoot);
      return;
    }
    for (const [key, v] of Object.entries(node)) if (key !== 'loc') visit(v, atRoot);
  };
  visit(program, true);
  return whole ? null : keys;
}
