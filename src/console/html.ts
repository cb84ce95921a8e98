/**
 * The console's template layer: `html` is a tagged template whose interpolations are escaped
 * unless they are Html already (another template, or raw() for trusted markup such as an
 * asset's inline JSON). Arrays are joined, null/undefined/false render nothing: so a page is
 * built from plain expressions, and text from the CMDB can never become markup.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type Renderable = Html | string | number | boolean | null | undefined | Renderable[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

function render(value: Renderable): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup livery wrote itself, taken as it is. */
export const raw = (text: string): Html => new Html(text);

/** A JSON value for an HTML attribute (hx-headers, hx-vals): escaped like any attribute text. */
export const jsonAttr = (value: unknown): string => JSON.stringify(value);
