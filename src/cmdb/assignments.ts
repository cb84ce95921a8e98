import type { SqlDb } from './sql.js';
import { invalid, notFound } from './errors.js';
import { formatSelector, parseSelector, type Selector } from './selector.js';
import { checkChannel, checkImageName } from './validate.js';
import { iso } from './util.js';

/** A rule: machines matching the selector boot this image's channel (unless they have their own). */
export interface Assignment {
  id: number;
  selector: string;
  image: { name: string; channel: string };
  priority: number;
  createdAt: string;
}

/** An assignment with its selector parsed, as the boot decision uses it. */
export interface AssignmentRule extends Assignment {
  terms: Selector;
}

export interface AssignmentInput {
  selector: string;
  /** `name` or `name@channel` (channel stable when omitted). */
  image: string;
  priority?: number;
}

interface AssignmentRow {
  id: number;
  selector: string;
  image_name: string;
  image_channel: string;
  priority: number;
  created_at: number;
}

const toRule = (r: AssignmentRow): AssignmentRule => ({
  id: r.id,
  selector: r.selector,
  image: { name: r.image_name, channel: r.image_channel },
  priority: r.priority,
  createdAt: iso(r.created_at),
  terms: parseSelector(r.selector),
});

/** Image assignment rules (migration 5); every change moves the machines change counter. */
export class SqlAssignmentStore {
  private readonly all;

  constructor(private readonly db: SqlDb) {
    this.all = db.prepare('SELECT * FROM assignments');
  }

  /**
   * Every rule, in the order the boot decision tries them (compareRules): ties in priority are
   * broken, not refused, so two rules for different groups can share a priority.
   */
  rules(): AssignmentRule[] {
    return (this.all.all() as AssignmentRow[]).map(toRule).sort(compareRules);
  }

  list(): Assignment[] {
    return this.rules().map(({ terms: _t, ...a }) => a);
  }

  add(input: AssignmentInput): Assignment {
    const selector = formatSelector(parseSelector(input.selector));
    const [name, channel, extra] = String(input.image ?? '').split('@');
    if (extra !== undefined) throw invalid('image', 'expected name or name@channel');
    const imageName = checkImageName('image', name);
    if (!imageName) throw invalid('image', 'is required: name or name@channel');
    const imageChannel = checkChannel('image', channel) ?? 'stable';
    const priority = input.priority ?? 0;
    if (!Number.isInteger(priority) || priority < -1_000_000 || priority > 1_000_000) throw invalid('priority', 'must be a whole number from -1000000 to 1000000');
    const id = this.db
      .prepare('INSERT INTO assignments (selector, image_name, image_channel, priority, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id')
      .pluck()
      .get(selector, imageName, imageChannel, priority, Date.now()) as number;
    return this.get(id);
  }

  get(id: number): Assignment {
    const row = this.db.prepare('SELECT * FROM assignments WHERE id = ?').get(id) as AssignmentRow | undefined;
    if (!row) throw notFound(`assignment ${id}`);
    const { terms: _t, ...a } = toRule(row);
    return a;
  }

  remove(id: number): Assignment {
    const a = this.get(id);
    this.db.prepare('DELETE FROM assignments WHERE id = ?').run(id);
    return a;
  }
}

/** Higher priority first, then more terms, then older (lower id): a total order, so ties never depend on luck. */
export function compareRules(a: AssignmentRule, b: AssignmentRule): number {
  return b.priority - a.priority || b.terms.length - a.terms.length || a.id - b.id;
}
