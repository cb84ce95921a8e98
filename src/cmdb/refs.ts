import { parseCidr } from '../net/ipv4.js';
import { normalizeMac } from '../net/mac.js';
import { conflict, invalid } from './errors.js';
import { HOSTNAME } from './validate.js';

/**
 * A `{ref}` names a record by one of several keys (a machine by MAC, hostname or id; a subnet
 * by name, CIDR or id). A bare ref is read as every kind it could be, every reading is looked
 * up, and more than one record answering is an error, never a guess: names that read as
 * another kind are refused at write time (refuseRefLikeName), so only records written before
 * that rule can collide, and `kind:value` names one reading explicitly.
 */
export type RefKind = 'id' | 'mac' | 'hostname' | 'name' | 'cidr';

/** Looks up one reading of a ref; null when no record has that key. */
export type RefLookup<T> = (value: string) => T | null;

const ID = /^[0-9]{1,15}$/;
const TYPED = /^([a-z]+):(.*)$/s;

/** The canonical form of `value` read as `kind`, or null when it cannot be read so. */
function readAs(kind: RefKind, value: string): string | null {
  if (kind === 'id') return ID.test(value) ? String(Number(value)) : null;
  if (kind === 'mac') return normalizeMac(value);
  if (kind === 'cidr') return parseCidr(value) ? value.trim() : null;
  // A MAC written with colons is no hostname: it is looked up as a MAC alone.
  if (kind === 'hostname') return HOSTNAME.test(value) ? value : null;
  return value === '' ? null : value;
}

/** The readings of `ref` among `kinds`: one for a typed ref, every possible one for a bare ref. */
export function readingsOf(ref: string, kinds: readonly RefKind[]): { kind: RefKind; value: string }[] {
  const typed = TYPED.exec(ref);
  if (typed && !normalizeMac(ref)) {
    const kind = typed[1] as RefKind;
    if (!kinds.includes(kind)) throw invalid('ref', `unknown prefix ${JSON.stringify(typed[1] + ':')}; use one of ${kinds.map((k) => `${k}:`).join(', ')}`);
    const value = readAs(kind, typed[2]!);
    if (value === null) throw invalid('ref', `${JSON.stringify(typed[2])} is not a ${kind}`);
    return [{ kind, value }];
  }
  return kinds.flatMap((kind) => {
    const value = readAs(kind, ref);
    return value === null ? [] : [{ kind, value }];
  });
}

/** The canonical MAC a ref names as a MAC (bare or `mac:`), or null. */
export function macOfRef(ref: string): string | null {
  return readingsOf(ref, ['mac', 'id', 'hostname']).find((r) => r.kind === 'mac')?.value ?? null;
}

/**
 * The one record `ref` names, or null. Throws a 409-kind error naming every candidate and the
 * typed prefixes when several records answer to it.
 */
export function resolveRef<T extends { id: number }>(
  what: string,
  ref: string,
  lookups: Partial<Record<RefKind, RefLookup<T>>>,
  describe: (record: T) => string,
): T | null {
  const kinds = Object.keys(lookups) as RefKind[];
  const hits: { kind: RefKind; value: string; record: T }[] = [];
  for (const r of readingsOf(ref, kinds)) {
    const record = lookups[r.kind]!(r.value);
    if (record && !hits.some((h) => h.record.id === record.id)) hits.push({ ...r, record });
  }
  if (hits.length > 1) {
    const candidates = hits.map((h) => `the ${h.kind} of ${what} ${describe(h.record)}`).join(' and ');
    throw conflict('ref', `${JSON.stringify(ref)} is ambiguous: it is ${candidates}; say which with ${hits.map((h) => `${h.kind}:${ref}`).join(' or ')}`);
  }
  return hits[0]?.record ?? null;
}

/** Refuses a name (hostname, subnet name) that a bare ref would also read as another kind. */
export function refuseRefLikeName(field: string, name: string, others: readonly RefKind[], own: string | null = null): void {
  for (const kind of others) {
    const value = readAs(kind, name);
    if (value === null || (kind === 'cidr' && own !== null && value === own)) continue;
    throw invalid(field, `${JSON.stringify(name)} reads as ${kind === 'id' ? 'an id' : `a ${kind.toUpperCase()}`}, so a reference to it would be ambiguous; choose another`);
  }
}
