import { readFileSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { parseAddressOrCidr } from '../net/ipv4.js';
import { nodeName } from './node-name.js';
import { ConfigSchema, type Config } from './schema.js';

/** The livery checkout or install (this file is src/config/load.ts or dist/config/load.js). */
export const PACKAGE_ROOT = resolve(import.meta.dirname, '..', '..');

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads a TOML (.toml) or YAML (.yaml/.yml) file into a plain object. */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    switch (extname(path).toLowerCase()) {
      case '.toml':
        return parseToml(text);
      case '.yaml':
      case '.yml':
        return parseYaml(text) ?? {};
      default:
        throw new ConfigError(`config file ${path}: unknown format (use .toml, .yaml or .yml)`);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
}

/** Deep-merges overrides (e.g. from command-line flags) onto a base object. */
export function mergeConfig(base: unknown, overrides: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(isPlainObject(base) ? base : {}) };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? mergeConfig(out[key], value) : value;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Fills defaults, validates, and resolves paths. Throws ConfigError listing every bad key as
 * `dotted.key: problem` so an operator can fix the file in one pass.
 */
export function resolveConfig(raw: unknown, baseDir = process.cwd()): Config {
  const withDefaults = Value.Default(ConfigSchema, structuredClone(raw ?? {}));
  const problems = [...Value.Errors(ConfigSchema, withDefaults)].map((e) => {
    const key = e.path.replace(/^\//, '').replaceAll('/', '.') || '(top level)';
    if (e.type === ValueErrorType.ObjectAdditionalProperties) return `${key}: unknown key`;
    return `${key}: ${e.message}${e.value !== undefined && typeof e.value !== 'object' ? ` (got ${JSON.stringify(e.value)})` : ''}`;
  });
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  ${[...new Set(problems)].join('\n  ')}`);
  }
  const config = withDefaults as Config;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  config.dataDir = abs(config.dataDir);
  config.boot.templatesDir = config.boot.templatesDir ? abs(config.boot.templatesDir) : resolve(PACKAGE_ROOT, 'pxe-templates');
  config.tftp.root = config.tftp.root ? abs(config.tftp.root) : resolve(config.dataDir, 'tftp');
  config.builder.cacheDir = config.builder.cacheDir ? abs(config.builder.cacheDir) : resolve(config.dataDir, 'cache');
  if (!config.http.publicUrl) {
    const scheme = config.http.tls.cert ? 'https' : 'http';
    config.http.publicUrl = `${scheme}://${config.http.listen}`;
  }
  config.http.publicUrl = config.http.publicUrl.replace(/\/+$/, '');
  if (Boolean(config.http.tls.cert) !== Boolean(config.http.tls.key)) {
    throw new ConfigError('invalid configuration:\n  http.tls: set both cert and key, or neither');
  }
  if (config.dhcp.enabled && (!config.dhcp.interface || !config.dhcp.address)) {
    throw new ConfigError(
      'invalid configuration:\n  dhcp: enabled without dhcp.interface and dhcp.address; livery answers DHCP only on an interface you name',
    );
  }
  if (config.dhcp.peers.length > 0 && !config.database.url) {
    throw new ConfigError('invalid configuration:\n  dhcp.peers: nodes that share a segment share their leases through PostgreSQL; set database.url');
  }
  if (config.dhcp.peers.includes(nodeName(config))) {
    throw new ConfigError(`invalid configuration:\n  dhcp.peers: names this node (${nodeName(config)}); list only the other nodes on the segment`);
  }
  const badRelay = config.dhcp.relaySources.findIndex((r) => parseAddressOrCidr(r) === null);
  if (badRelay >= 0) {
    throw new ConfigError(`invalid configuration:\n  dhcp.relaySources.${badRelay}: ${JSON.stringify(config.dhcp.relaySources[badRelay])} is not an IPv4 address or CIDR (e.g. 10.0.0.254 or 10.0.0.0/24)`);
  }
  if (config.dhcp.enabled && /^(127\.|localhost|\[::1\])/.test(new URL(config.http.publicUrl).host)) {
    throw new ConfigError(
      `invalid configuration:\n  http.publicUrl: DHCP is on but machines would be sent to ${config.http.publicUrl}, a loopback address they cannot reach; set http.listen or http.publicUrl`,
    );
  }
  if (config.dhcp.enabled && config.tftp.enabled && /^127\./.test(config.tftp.listen)) {
    throw new ConfigError(
      `invalid configuration:\n  tftp.listen: DHCP is on but TFTP listens on ${config.tftp.listen}, where PXE clients cannot reach it; set tftp.listen (e.g. 0.0.0.0:69) or disable TFTP`,
    );
  }
  return config;
}

/** Loads the config file (if any), applies flag overrides, validates. */
export function loadConfig(path: string | undefined, overrides: Record<string, unknown> = {}): Config {
  const fromFile = path ? readConfigFile(path) : {};
  return resolveConfig(mergeConfig(fromFile, overrides));
}
