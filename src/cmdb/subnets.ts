import type { SqlDb } from './sql.js';
import { conflict, invalid, notFound } from './errors.js';
import { cidrContains, isUsableHost, parseCidr, parseIpv4, type Cidr } from '../net/ipv4.js';
import type { SecureBoot, Subnet, SubnetInput, UnknownMacPolicy } from './types.js';
import { checkChannel, checkImageName, checkIp, checkSecureBoot, checkText } from './validate.js';
import { refuseRefLikeName, resolveRef } from './refs.js';
import { iso } from './util.js';

interface SubnetRow {
  id: number;
  name: string;
  cidr: string;
  network: number;
  prefix: number;
  gateway: string | null;
  dns: string;
  domain: string | null;
  pools: string;
  lease_seconds: number;
  policy: UnknownMacPolicy;
  discover_action: 'retry' | 'exit';
  default_image_name: string | null;
  default_image_channel: string | null;
  secure_boot: SecureBoot | null;
  created_at: number;
  updated_at: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._\/-]{0,63}$/;
export const UNKNOWN_MAC_POLICIES: readonly UnknownMacPolicy[] = ['ignore', 'discover', 'default-image', 'commission'];

function toSubnet(r: SubnetRow): Subnet {
  return {
    id: r.id,
    name: r.name,
    cidr: r.cidr,
    gateway: r.gateway,
    dns: JSON.parse(r.dns),
    domain: r.domain,
    pools: JSON.parse(r.pools),
    leaseSeconds: r.lease_seconds,
    policy: r.policy,
    discoverAction: r.discover_action,
    defaultImage: { name: r.default_image_name, channel: r.default_image_channel },
    secureBoot: r.secure_boot,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

/** A pool as integers, for overlap and containment checks. */
export interface PoolBounds {
  start: number;
  end: number;
}

export function poolBounds(s: Pick<Subnet, 'pools'>): PoolBounds[] {
  return s.pools.map((p) => ({ start: parseIpv4(p.start)!, end: parseIpv4(p.end)! }));
}

export class SqlSubnetStore {
  private readonly nearestBelow;

  constructor(private readonly db: SqlDb) {
    // Every boot decision (HTTP, TFTP) looks up the subnet of an address: keep it prepared.
    this.nearestBelow = db.prepare('SELECT * FROM subnets WHERE network <= ? ORDER BY network DESC LIMIT 1');
  }

  list(): Subnet[] {
    return (this.db.prepare('SELECT * FROM subnets ORDER BY network').all() as SubnetRow[]).map(toSubnet);
  }

  /**
   * By name, CIDR or numeric id, or a typed `name:`, `cidr:`, `id:` ref. A bare ref two subnets
   * answer to (rows older than the name rule) is a conflict.
   */
  find(ref: string | number): Subnet | null {
    const one = (sql: string, arg: unknown) => {
      const row = this.db.prepare(sql).get(arg) as SubnetRow | undefined;
      return row ? toSubnet(row) : null;
    };
    if (typeof ref === 'number') return one('SELECT * FROM subnets WHERE id = ?', ref);
    return resolveRef('subnet', ref, {
      name: (name) => one('SELECT * FROM subnets WHERE name = ?', name),
      cidr: (cidr) => one('SELECT * FROM subnets WHERE cidr = ?', cidr),
      id: (id) => one('SELECT * FROM subnets WHERE id = ?', Number(id)),
    }, (s) => `${s.id} (${s.name}, ${s.cidr})`);
  }

  get(ref: string | number): Subnet {
    const s = this.find(ref);
    if (!s) throw notFound(`subnet ${ref}`);
    return s;
  }

  /** The subnet whose block contains this address (subnets never overlap). */
  containing(ip: number): Subnet | null {
    const row = this.nearestBelow.get(ip) as SubnetRow | undefined;
    if (!row) return null;
    const c = parseCidr(row.cidr)!;
    return cidrContains(c, ip) ? toSubnet(row) : null;
  }

  create(input: SubnetInput): Subnet {
    if (!input.cidr) throw invalid('cidr', 'is required');
    const merged = this.validate(input, null);
    const now = Date.now();
    const id = this.db
      .prepare(
        `INSERT INTO subnets (name, cidr, network, prefix, gateway, dns, domain, pools, lease_seconds, policy,
           discover_action, default_image_name, default_image_channel, secure_boot, created_at, updated_at)
         VALUES (@name, @cidr, @network, @prefix, @gateway, @dns, @domain, @pools, @leaseSeconds, @policy,
           @discoverAction, @defaultImageName, @defaultImageChannel, @secureBoot, @now, @now) RETURNING id`,
      )
      .pluck()
      .get({ ...merged, now }) as number;
    return this.get(id);
  }

  update(ref: string, input: SubnetInput): Subnet {
    const existing = this.get(ref);
    const merged = this.validate(input, existing);
    this.db
      .prepare(
        `UPDATE subnets SET name=@name, cidr=@cidr, network=@network, prefix=@prefix, gateway=@gateway, dns=@dns,
           domain=@domain, pools=@pools, lease_seconds=@leaseSeconds, policy=@policy, discover_action=@discoverAction,
           default_image_name=@defaultImageName, default_image_channel=@defaultImageChannel, secure_boot=@secureBoot, updated_at=@now
         WHERE id=@id`,
      )
      .run({ ...merged, id: existing.id, now: Date.now() });
    return this.get(existing.id);
  }

  remove(ref: string): Subnet {
    const s = this.get(ref);
    const users = this.db.prepare('SELECT hostname FROM machines WHERE subnet_id = ? LIMIT 3').all(s.id) as { hostname: string | null }[];
    if (users.length > 0) {
      throw conflict('subnet', `${s.name} is still named by machines (${users.map((u) => u.hostname ?? '?').join(', ')}…); move them first`);
    }
    this.db.prepare('DELETE FROM subnets WHERE id = ?').run(s.id);
    return s;
  }

  /** Merges input over the existing subnet and checks every rule; returns the row values. */
  private validate(input: SubnetInput, existing: Subnet | null) {
    // A subnet named after its CIDR (the default) keeps following it when the CIDR changes.
    const defaultName = existing === null || existing.name === existing.cidr;
    const name = input.name ?? (defaultName ? input.cidr : undefined) ?? existing?.name ?? '';
    if (typeof name !== 'string' || !NAME.test(name)) throw invalid('name', `invalid subnet name ${JSON.stringify(name)}`);
    const cidrText = input.cidr ?? existing!.cidr;
    if (typeof cidrText !== 'string') throw invalid('cidr', 'must be a CIDR block like 10.0.0.0/24');
    // Rows written before this rule keep their name until it is changed.
    if (name !== existing?.name || cidrText !== existing?.cidr) refuseRefLikeName('name', name, ['cidr', 'id'], cidrText);
    const cidr = parseCidr(cidrText);
    if (!cidr) throw invalid('cidr', `${JSON.stringify(cidrText)} is not a CIDR block like 10.0.0.0/24 (host bits must be zero)`);
    if (cidr.prefix < 8 || cidr.prefix > 30) throw invalid('cidr', `prefix /${cidr.prefix} is outside /8../30`);
    for (const other of this.list()) {
      if (other.id === existing?.id) continue;
      const oc = parseCidr(other.cidr)!;
      if (oc.first <= cidr.last && cidr.first <= oc.last) throw conflict('cidr', `${cidrText} overlaps subnet ${other.name} (${other.cidr})`);
      if (other.name.toLowerCase() === name.toLowerCase()) throw conflict('name', `a subnet named ${name} already exists`);
    }
    const gateway = checkIp('gateway', input.gateway !== undefined ? input.gateway : existing?.gateway);
    if (gateway && !isUsableHost(cidr, parseIpv4(gateway)!)) throw invalid('gateway', `${gateway} is not a host address in ${cidrText}`);
    const dns = input.dns ?? existing?.dns ?? [];
    if (!Array.isArray(dns) || dns.length > 8) throw invalid('dns', 'must be a list of at most 8 addresses');
    dns.forEach((d, i) => {
      if (!checkIp(`dns[${i}]`, d)) throw invalid(`dns[${i}]`, 'empty address');
    });
    const domain = checkText('domain', input.domain !== undefined ? input.domain : existing?.domain, 253);
    const pools = input.pools ?? existing?.pools ?? [];
    const bounds = this.checkPools(pools, cidr, cidrText, gateway);
    this.checkReservationsOutsidePools(cidr, bounds);
    const leaseSeconds = input.leaseSeconds ?? existing?.leaseSeconds ?? 3600;
    if (!Number.isInteger(leaseSeconds) || leaseSeconds < 60 || leaseSeconds > 365 * 86400) {
      throw invalid('leaseSeconds', 'must be a whole number of seconds from 60 to one year');
    }
    const policy = input.policy ?? existing?.policy ?? 'discover';
    if (!UNKNOWN_MAC_POLICIES.includes(policy)) throw invalid('policy', `must be one of ${UNKNOWN_MAC_POLICIES.join(', ')}`);
    const discoverAction = input.discoverAction ?? existing?.discoverAction ?? 'retry';
    if (discoverAction !== 'retry' && discoverAction !== 'exit') throw invalid('discoverAction', 'must be retry or exit');
    const defaultImageName = checkImageName('defaultImage.name', input.defaultImage?.name !== undefined ? input.defaultImage.name : existing?.defaultImage.name);
    const defaultImageChannel = checkChannel(
      'defaultImage.channel',
      input.defaultImage?.channel !== undefined ? input.defaultImage.channel : existing?.defaultImage.channel,
    );
    if (policy === 'default-image' && !defaultImageName) throw invalid('defaultImage.name', 'is required with policy default-image');
    return {
      name,
      cidr: cidrText,
      network: cidr.network,
      prefix: cidr.prefix,
      gateway,
      dns: JSON.stringify(dns),
      domain,
      pools: JSON.stringify(pools.map((p) => ({ start: p.start.trim(), end: p.end.trim() }))),
      leaseSeconds,
      policy,
      discoverAction,
      defaultImageName,
      defaultImageChannel: defaultImageChannel ?? (defaultImageName ? 'stable' : null),
      secureBoot: checkSecureBoot('secureBoot', input.secureBoot !== undefined ? input.secureBoot : existing?.secureBoot),
    };
  }

  private checkPools(pools: { start: string; end: string }[], cidr: Cidr, cidrText: string, gateway: string | null): PoolBounds[] {
    if (!Array.isArray(pools) || pools.length > 64) throw invalid('pools', 'must be a list of at most 64 ranges');
    const bounds: PoolBounds[] = pools.map((p, i) => {
      const start = typeof p?.start === 'string' ? parseIpv4(p.start) : null;
      const end = typeof p?.end === 'string' ? parseIpv4(p.end) : null;
      if (start === null || end === null) throw invalid(`pools[${i}]`, 'needs start and end IPv4 addresses');
      if (start > end) throw invalid(`pools[${i}]`, `start ${p.start} is after end ${p.end}`);
      if (!isUsableHost(cidr, start) || !isUsableHost(cidr, end)) {
        throw invalid(`pools[${i}]`, `${p.start}-${p.end} is outside the usable hosts of ${cidrText}`);
      }
      const gw = gateway ? parseIpv4(gateway)! : -1;
      if (gw >= start && gw <= end) throw invalid(`pools[${i}]`, `${p.start}-${p.end} contains the gateway ${gateway}`);
      return { start, end };
    });
    const sorted = bounds.map((b, i) => ({ ...b, i })).sort((a, b) => a.start - b.start);
    for (let k = 1; k < sorted.length; k++) {
      if (sorted[k]!.start <= sorted[k - 1]!.end) throw invalid(`pools[${sorted[k]!.i}]`, `overlaps pools[${sorted[k - 1]!.i}]`);
    }
    return bounds;
  }

  /** A reserved address inside a dynamic pool could be handed to another MAC: refuse it. */
  private checkReservationsOutsidePools(cidr: Cidr, pools: PoolBounds[]): void {
    if (pools.length === 0) return;
    const rows = this.db.prepare('SELECT hostname, ip FROM machines WHERE ip IS NOT NULL').iterate() as Iterable<{ hostname: string | null; ip: string }>;
    for (const r of rows) {
      const ip = parseIpv4(r.ip)!;
      if (!cidrContains(cidr, ip)) continue;
      if (pools.some((p) => ip >= p.start && ip <= p.end)) {
        throw conflict('pools', `pool contains ${r.ip}, reserved for machine ${r.hostname ?? '?'}`);
      }
    }
  }
}

