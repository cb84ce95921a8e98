import { posix } from 'node:path';
import type { FirewallAllow } from './recipe-types.js';
import { MAX_HEALTH_TIMEOUT_SECONDS } from '../health/spec.js';

/**
 * Validators for recipe values. Each returns the parsed value or an "expected ..." message,
 * so every recipe error tells the author what would have been accepted.
 */
export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(error: string): Checked<T> => ({ ok: false, error });

export const IMAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const IMAGE_VERSION = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const SSH_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;
const CRYPT_HASH = /^\$(1|5|6|y|gy|7|2[aby])\$[./A-Za-z0-9$=,]+$/;
const TIMEZONE = /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/;
const LOCALE = /^([a-z]{2,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@[a-z]+)?|C|C\.UTF-8|POSIX)$/;
const UNIT = /^[A-Za-z0-9@._:\\-]+$/;
const SUITE = /^[a-z][a-z0-9-]*$/;
const ARCH = /^[a-z0-9_]{1,16}$/;
const COMPONENT = /^[a-z][a-z0-9-]*$/;
const OWNER_PART = /^([a-z_][a-z0-9_-]{0,31}|[0-9]+)$/;

export function imageName(v: string): Checked<string> {
  return IMAGE_NAME.test(v) ? ok(v) : bad(`expected an image name of lower-case letters, digits, '.', '_' or '-' (got '${v}')`);
}

export function imageVersion(v: string): Checked<string> {
  return IMAGE_VERSION.test(v) ? ok(v) : bad(`expected a version of letters, digits, '.', '_', '+', '~' or '-' (got '${v}')`);
}

export function packageName(v: string): Checked<string> {
  return PACKAGE.test(v) ? ok(v) : bad(`expected a Debian package name (got '${v}')`);
}

export function userName(v: string): Checked<string> {
  return USER.test(v) ? ok(v) : bad(`expected a user name such as 'ops' (got '${v}')`);
}

export function sshKey(v: string): Checked<string> {
  return SSH_KEY.test(v) ? ok(v) : bad(`expected an OpenSSH public key such as "ssh-ed25519 AAAA... comment" (got '${v}')`);
}

export function cryptHash(v: string): Checked<string> {
  return CRYPT_HASH.test(v) ? ok(v) : bad(`expected a crypt(3) password hash such as '$6$salt$...' (got '${v}')`);
}

export function timezone(v: string): Checked<string> {
  return TIMEZONE.test(v) && !v.split('/').includes('..') ? ok(v) : bad(`expected a time zone such as 'Europe/Berlin' or 'UTC' (got '${v}')`);
}

export function locale(v: string): Checked<string> {
  return LOCALE.test(v) ? ok(v) : bad(`expected a locale such as 'C.UTF-8' or 'en_US.UTF-8' (got '${v}')`);
}

export function unitNames(v: string): Checked<string[]> {
  const units = v.split(',').filter((u) => u !== '');
  const wrong = units.find((u) => !UNIT.test(u));
  if (units.length === 0 || wrong !== undefined) return bad(`expected comma-separated systemd unit names such as 'ssh,nftables' (got '${v}')`);
  return ok(units);
}

export function suite(v: string): Checked<string> {
  return SUITE.test(v) ? ok(v) : bad(`expected a suite such as 'bookworm' (got '${v}')`);
}

export function arch(v: string): Checked<string> {
  return ARCH.test(v) ? ok(v) : bad(`expected a Debian architecture such as 'amd64' (got '${v}')`);
}

export function components(v: string): Checked<string[]> {
  const list = v.split(',');
  return list.every((c) => COMPONENT.test(c)) ? ok(list) : bad(`expected comma-separated archive components such as 'main,non-free-firmware' (got '${v}')`);
}

export function mirrorUrl(v: string): Checked<string> {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return bad(`expected an http:// or https:// mirror URL (got '${v}')`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return bad(`expected an http:// or https:// mirror URL (got '${v}')`);
  return ok(v.replace(/\/+$/, ''));
}

export function fileMode(v: string): Checked<number> {
  return /^0?[0-7]{3,4}$/.test(v) ? ok(parseInt(v, 8)) : bad(`expected an octal file mode such as 0644 (got '${v}')`);
}

export function owner(v: string): Checked<{ owner: string; group: string }> {
  const [user, group, extra] = v.split(':');
  if (extra === undefined && user && group && OWNER_PART.test(user) && OWNER_PART.test(group)) return ok({ owner: user, group });
  return bad(`expected an owner in the form user:group such as root:root (got '${v}')`);
}

export function uid(v: string): Checked<number> {
  const n = Number(v);
  return /^[0-9]+$/.test(v) && n >= 1000 && n < 60000 ? ok(n) : bad(`expected a uid between 1000 and 59999 (got '${v}')`);
}

/** An absolute path inside the image, normalised; '..' and the root itself are refused. */
export function imagePath(v: string): Checked<string> {
  if (!v.startsWith('/') || v.split('/').includes('..') || posix.normalize(v) === '/') {
    return bad(`expected an absolute destination path inside the image without '..' (got '${v}')`);
  }
  return ok(posix.normalize(v).replace(/\/$/, ''));
}

export function absoluteProgram(v: string): Checked<string> {
  return /^\/[A-Za-z0-9._/+-]+$/.test(v) ? ok(v) : bad(`expected an absolute interpreter path such as /bin/bash (got '${v}')`);
}

/** `tcp/22`, `udp/53`, `tcp/8000-8100`; several separated by commas. */
export function firewallAllows(v: string): Checked<FirewallAllow[]> {
  const rules: FirewallAllow[] = [];
  for (const item of v.split(',')) {
    const m = /^(tcp|udp)\/([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(item);
    const from = m ? Number(m[2]) : NaN;
    const to = m && m[3] !== undefined ? Number(m[3]) : from;
    if (!m || from < 1 || to > 65535 || to < from) return bad(`expected protocol/port such as tcp/22, udp/53 or tcp/8000-8100 (got '${item}')`);
    rules.push({ protocol: m[1] as 'tcp' | 'udp', fromPort: from, toPort: to });
  }
  return ok(rules);
}

export function healthTimeout(v: string): Checked<number> {
  const n = Number(v);
  return /^[0-9]+$/.test(v) && n >= 1 && n <= MAX_HEALTH_TIMEOUT_SECONDS ? ok(n) : bad(`expected a health timeout in seconds between 1 and ${MAX_HEALTH_TIMEOUT_SECONDS} (got '${v}')`);
}

/** One line of shell, run by the agent with `sh -c`; printable text only, so the agent's config stays one check per line. */
export function healthCommand(v: string): Checked<string> {
  return v.trim() !== '' && v.length <= 1024 && !/[\x00-\x1f\x7f]/.test(v) ? ok(v) : bad(`expected a one-line shell command of at most 1024 printable characters such as "test -e /dev/kvm" (got '${v}')`);
}
