import { formatKeyValues, parseKeyValueLists } from '../cmdb/key-values.js';
import Table from 'cli-table3';

/** Human output is an aligned, borderless table (like imgadm or kubectl); --json prints data as-is. */
export function printTable(headers: string[], rows: (string | number | null | undefined)[][]): void {
  const table = new Table({
    head: headers,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
      'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) table.push(r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
  console.log(table.toString().split('\n').map((l) => l.trimEnd()).join('\n'));
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** Key/value block for `show` commands. */
export function printRecord(record: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [k, v] of Object.entries(record)) {
    const text = v === null || v === undefined ? '-' : typeof v === 'object' ? formatObject(v) : String(v);
    console.log(`${k.padEnd(width)}  ${text}`);
  }
}

/** Lists as `a, b`; string maps (labels, vars) in the form `--label` reads back. */
export function formatObject(v: object): string {
  if (Array.isArray(v)) return v.join(', ') || '-';
  const entries = Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)] as const);
  return entries.length === 0 ? '-' : formatKeyValues(Object.fromEntries(entries));
}

/** Parses repeated `--label`/`--var` flags, each a key-values.ts list, into one object. */
export function keyValues(list: string[] | undefined, what: string): Record<string, string> | undefined {
  if (!list) return undefined;
  return parseKeyValueLists(what, list);
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];
