import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig } from '../../src/config/index.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('config', () => {
  it('has a safe embedded default: loopback only, DHCP off', () => {
    const c = resolveConfig({}, '/srv/livery');
    expect(c.dataDir).toBe('/srv/livery/var');
    expect(c.http.listen).toBe('127.0.0.1:8080');
    expect(c.tftp.listen).toBe('127.0.0.1:69');
    expect(c.dhcp.enabled).toBe(false);
    expect(c.tftp.root).toBe('/srv/livery/var/tftp');
    expect(c.http.publicUrl).toBe('http://127.0.0.1:8080');
  });

  it('reads TOML and YAML and lets flags override', () => {
    const toml = join(dir.path, 'a.toml');
    writeFileSync(toml, 'dataDir = "/d"\n[http]\nlisten = "0.0.0.0:80"\n[tftp]\nmaxBlksize = 8192\n');
    const c = loadConfig(toml, { http: { listen: '127.0.0.1:9999' } });
    expect(c.http.listen).toBe('127.0.0.1:9999');
    expect(c.tftp.maxBlksize).toBe(8192);
    const yaml = join(dir.path, 'a.yaml');
    writeFileSync(yaml, 'dataDir: /y\nhttp:\n  listen: 10.0.0.1:8080\ntftp:\n  listen: 10.0.0.1:69\ndhcp:\n  enabled: true\n  interface: br0\n  address: 10.0.0.1\n');
    expect(loadConfig(yaml).dhcp.interface).toBe('br0');
  });

  it('names the bad key and why', () => {
    expect(() => resolveConfig({ tftp: { maxBlksize: 7 } })).toThrow(/tftp\.maxBlksize: Expected integer to be greater or equal to 512 \(got 7\)/);
    expect(() => resolveConfig({ http: { listen: 'nope' } })).toThrow(/http\.listen:/);
    expect(() => resolveConfig({ tftp: { blocksize: 1 } })).toThrow(/tftp\.blocksize: unknown key/);
    expect(() => resolveConfig({ bogus: 1 })).toThrow(/bogus: unknown key/);
    expect(() => resolveConfig({ dhcp: { enabled: true } })).toThrow(/dhcp: enabled without dhcp.interface/);
    const dhcp = { enabled: true, interface: 'eth9', address: '10.0.0.1' };
    expect(() => resolveConfig({ dhcp })).toThrow(/http.publicUrl: DHCP is on but machines would be sent to http:\/\/127.0.0.1:8080/);
    expect(() => resolveConfig({ dhcp, http: { listen: '0.0.0.0:8080', publicUrl: 'http://10.0.0.1:8080' } })).toThrow(/tftp.listen: DHCP is on but TFTP listens on 127.0.0.1:69/);
    // Relay sources: an address or a CIDR without host bits; anything else is named with its index.
    expect(resolveConfig({ dhcp: { relaySources: ['10.0.0.254', '10.1.0.0/16'] } }).dhcp.relaySources).toEqual(['10.0.0.254', '10.1.0.0/16']);
    expect(() => resolveConfig({ dhcp: { relaySources: ['10.0.0.1', '10.1.0.1/16'] } })).toThrow(/dhcp\.relaySources\.1: "10\.1\.0\.1\/16" is not an IPv4 address or CIDR/);
    expect(() => resolveConfig({ dhcp: { relaySources: ['relay1'] } })).toThrow(/dhcp\.relaySources\.0:/);
    expect(() => resolveConfig({ dhcp: { unknownMacPoolPercent: 101 } })).toThrow(/dhcp\.unknownMacPoolPercent:/);
    expect(() => resolveConfig({ dhcp: { peers: ['b'] } })).toThrow(/dhcp\.peers: nodes that share a segment share their leases through PostgreSQL; set database\.url/);
    expect(() => resolveConfig({ node: { name: 'a' }, database: { url: 'postgres://livery@db/livery' }, dhcp: { peers: ['b', 'a'] } })).toThrow(/dhcp\.peers: names this node \(a\)/);
    expect(() => resolveConfig({ dhcp: { peers: ['-x'] } })).toThrow(/dhcp\.peers\.0:/);
    const bad = join(dir.path, 'bad.toml');
    writeFileSync(bad, 'x = [');
    expect(() => loadConfig(bad)).toThrow(/bad\.toml/);
    expect(() => loadConfig(join(dir.path, 'missing.toml'))).toThrow(/cannot read config file/);
  });
});
