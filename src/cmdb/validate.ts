import { normalizeMac } from '../net/mac.js';
import { parseIpv4 } from '../net/ipv4.js';
import { invalid } from './errors.js';
import { kernelArgsProblem } from './kernel-args.js';
import { SECURE_BOOT_VALUES, type SecureBoot } from './types.js';

/** Field checks shared by machines and subnets; each throws a CmdbError naming the field. */

/** What a hostname may be (RFC 1123 labels), and has been since the first CMDB: no other text can name a machine by hostname. */
export const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** An image id: what the catalog mints (randomUUID) and what a mirrored image carries. */
export const IMAGE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const IMAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const CHANNEL = /^[a-z0-9][a-z0-9._-]{0,31}$/;

export function checkMacs(field: string, macs: unknown): string[] {
  if (!Array.isArray(macs) || macs.length === 0) throw invalid(field, 'at least one MAC address is required');
  const out: string[] = [];
  for (const m of macs) {
    const mac = typeof m === 'string' ? normalizeMac(m) : null;
    if (!mac) throw invalid(field, `invalid MAC address ${JSON.stringify(m)}`);
    // The group bit marks a multicast (or the broadcast) address: no NIC sends from one, so such a machine could never boot.
    if (parseInt(mac.slice(0, 2), 16) & 1) throw invalid(field, `${mac} is a ${mac === 'ff:ff:ff:ff:ff:ff' ? 'broadcast' : 'multicast'} address, not a NIC's (was a digit mistyped?)`);
    if (out.includes(mac)) throw invalid(field, `MAC ${mac} listed twice`);
    out.push(mac);
  }
  return out;
}

/** Input reaches these checks from JSON: a number or object where a string belongs is refused, not coerced. */
function text(field: string, v: unknown, what: string): string | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v !== 'string') throw invalid(field, `expected ${what} as a string, got ${kindOf(v)}`);
  return v;
}

export function checkHostname(field: string, raw: unknown): string | null {
  const v = text(field, raw, 'a hostname');
  if (v === null) return null;
  if (!HOSTNAME.test(v)) throw invalid(field, `invalid hostname ${JSON.stringify(v)} (letters, digits and hyphens, dot-separated labels)`);
  return v.toLowerCase();
}

export function checkIp(field: string, raw: unknown): string | null {
  const v = text(field, raw, 'an IPv4 address');
  if (v === null) return null;
  if (parseIpv4(v) === null) throw invalid(field, `invalid IPv4 address ${JSON.stringify(v)}`);
  return v.trim();
}

export function checkUuid(field: string, raw: unknown): string | null {
  const v = text(field, raw, 'a UUID');
  if (v === null) return null;
  const lower = v.toLowerCase();
  if (!UUID.test(lower)) throw invalid(field, `invalid SMBIOS UUID ${JSON.stringify(v)}`);
  return lower;
}

export function checkLabels(field: string, v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'must be an object of key=value strings');
  for (const [k, val] of Object.entries(v)) {
    if (!LABEL_KEY.test(k)) throw invalid(field, `invalid label key ${JSON.stringify(k)}`);
    if (typeof val !== 'string' || val.length > 256) throw invalid(field, `label ${k} must be a string of at most 256 characters`);
  }
  return { ...(v as Record<string, string>) };
}

export function checkVars(field: string, v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'must be an object of name=value strings');
  for (const [k, val] of Object.entries(v)) {
    if (!VAR_NAME.test(k)) throw invalid(field, `invalid variable name ${JSON.stringify(k)} (letters, digits, underscore)`);
    if (typeof val !== 'string' || val.length > 65536) throw invalid(field, `variable ${k} must be a string of at most 64 KiB`);
  }
  return { ...(v as Record<string, string>) };
}

export function checkImageName(field: string, raw: unknown): string | null {
  const v = text(field, raw, 'an image name');
  if (v === null) return null;
  if (!IMAGE_NAME.test(v)) throw invalid(field, `invalid image name ${JSON.stringify(v)}`);
  return v;
}

export function checkChannel(field: string, raw: unknown): string | null {
  const v = text(field, raw, 'a channel');
  if (v === null) return null;
  if (!CHANNEL.test(v)) throw invalid(field, `invalid channel ${JSON.stringify(v)}`);
  return v;
}

export function checkKernelArgs(field: string, v: unknown): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') throw invalid(field, 'must be a string');
  const problem = kernelArgsProblem(v);
  if (problem) throw invalid(field, problem);
  return v.trim();
}

export function checkText(field: string, raw: unknown, max = 128): string | null {
  const v = text(field, raw, 'text');
  if (v === null) return null;
  if (v.length > max || /[\n\r\0]/.test(v)) throw invalid(field, `must be one line of at most ${max} characters`);
  return v;
}

/** A machine's or subnet's Secure Boot setting: off, on, auto, or null (inherit). */
export function checkSecureBoot(field: string, raw: unknown): SecureBoot | null {
  if (raw === null || raw === undefined || raw === '') return null;
  if (typeof raw !== 'string' || !SECURE_BOOT_VALUES.includes(raw as SecureBoot)) {
    throw invalid(field, `must be one of ${SECURE_BOOT_VALUES.join(', ')} (or null to inherit), got ${JSON.stringify(raw)}`);
  }
  return raw as SecureBoot;
}

/** An object field (image selector, defaultImage): a string or array there is a mistake, not a shorthand. */
export function checkObject<T extends object>(field: string, v: T | undefined | null): T | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(field, `expected an object, got ${kindOf(v)}`);
  return v;
}

/** "a number", "an array", "null": for messages that say what was sent instead. */
export const kindOf = (v: unknown): string =>
  v === null ? 'null' : v === undefined ? 'nothing' : Array.isArray(v) ? 'an array' : `${typeof v === 'object' ? 'an' : 'a'} ${typeof v}`;
