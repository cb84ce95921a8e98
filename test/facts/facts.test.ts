/**
 * The facts parser, flattening, drift and filters: pure functions, fed with reports livery-facts
 * printed on real machines (test/fixtures/facts) and with the script run here and now.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { hardwareDrift } from '../../src/facts/drift.js';
import { parseFactFilter } from '../../src/facts/filter.js';
import { flattenFacts } from '../../src/facts/flat.js';
import { parseDmidecode, parseFactsReport } from '../../src/facts/parse.js';
import type { Facts, FactsReport } from '../../src/facts/types.js';
import { matchesSelector, parseSelector } from '../../src/cmdb/selector.js';

const fixture = (name: string) => JSON.parse(readFileSync(`test/fixtures/facts/${name}`, 'utf8')) as FactsReport;

describe('parseFactsReport on captured reports', () => {
  it('a cloud VM without DMI tables (no /sys/class/dmi, dmidecode finds no entry point): CPU and memory from /proc, the virtio disk and NIC from /sys', () => {
    const f = parseFactsReport(fixture('host-virtio.json'));
    expect(f.system).toEqual({ vendor: null, product: null, serial: null, uuid: null });
    expect(f.firmware).toEqual({ vendor: null, version: null, date: null });
    expect(f.cpu).toEqual({ vendor: 'AMD', model: 'AMD EPYC', sockets: 1, cores: 2, threads: 2 });
    expect(f.memory).toEqual({ bytes: 24683748 * 1024, dimms: null, source: 'meminfo' });
    expect(f.disks).toEqual([{ name: 'vda', model: null, serial: '173663363932679', bytes: 536870912 * 512, rotational: true }]);
    expect(f.nics).toEqual([{ name: 'eth0', mac: '02:fc:00:00:00:01', driver: 'virtio_net', speedMbps: null, firmware: null }]);
    expect(f.bmc).toBeNull();
  });
});

describe('parseFactsReport on a QEMU VM (the commissioning e2e\'s: 2 vCPUs, 1 GiB, a 2 GiB virtio disk, an ipmi_sim BMC)', () => {
  it('takes system, firmware and the DIMM from dmidecode, the disk and NIC from /sys, the BMC from lan print; placeholders are no value', () => {
    const f = parseFactsReport(fixture('qemu-commission-vm.json'));
    expect(f.system).toEqual({ vendor: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: null, uuid: null });
    expect(f.firmware).toEqual({ vendor: 'SeaBIOS', version: '1.16.2-debian-1.16.2-1', date: '04/01/2014' });
    expect(f.cpu).toEqual({ vendor: 'AMD', model: 'QEMU Virtual CPU version 2.5+', sockets: 1, cores: 2, threads: 2 });
    // Installed memory from the DIMM, not the kernel's MemTotal (983496 kB).
    expect(f.memory).toEqual({ bytes: 1024 ** 3, dimms: 1, source: 'dimms' });
    expect(f.disks).toEqual([{ name: 'vda', model: null, serial: 'disk0', bytes: 2 * 1024 ** 3, rotational: true }]);
    expect(f.nics).toEqual([{ name: 'eth0', mac: '52:54:00:e2:c0:01', driver: 'virtio_net', speedMbps: null, firmware: null }]);
    // ipmitool lan print, in-band over the KCS interface: the simulator's LAN channel.
    expect(f.bmc).toEqual({ address: '10.99.0.10', mac: '02:00:0a:63:00:0a' });
  });
});

describe('livery-facts run on this machine', () => {
  it('prints a report whose parsed CPU threads, memory and NICs are what Node and /sys see', () => {
    const report = JSON.parse(execFileSync('sh', ['src/builder/assets/livery-facts.sh'], { encoding: 'utf8' })) as FactsReport;
    expect(Object.keys(report)).toEqual(['format', 'cpuinfo', 'meminfo', 'sysfs', 'dmidecode', 'ipmi-lan']);
    const f = parseFactsReport(report);
    expect(f.cpu.threads).toBe(cpus().length);
    if (f.memory.source === 'meminfo') expect(f.memory.bytes).toBe(totalmem());
    else expect(f.memory.bytes).toBeGreaterThanOrEqual(totalmem());
    const nic = execFileSync('sh', ['-c', 'for d in /sys/class/net/*; do [ -e "$d/device" ] && cat "$d/address"; done; true'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(f.nics.map((n) => n.mac).sort()).toEqual(nic.sort());
  });
});

describe('parseFactsReport sections', () => {
  const base = fixture('host-virtio.json');

  it('refuses a report without processors or memory, naming the section', () => {
    expect(() => parseFactsReport({ ...base, cpuinfo: '' })).toThrow('report.cpuinfo: lists no processor');
    expect(() => parseFactsReport({ ...base, meminfo: 'MemFree: 1 kB\n' })).toThrow('report.meminfo: has no MemTotal line');
  });

  it('reads the BMC from ipmitool lan print, and an unset address as none', () => {
    const lan = 'Set in Progress         : Set Complete\nIP Address Source       : DHCP Address\nIP Address              : 10.1.2.3\nSubnet Mask             : 255.255.255.0\nMAC Address             : 3C:EC:EF:00:11:22\n';
    expect(parseFactsReport({ ...base, 'ipmi-lan': lan }).bmc).toEqual({ address: '10.1.2.3', mac: '3c:ec:ef:00:11:22' });
    expect(parseFactsReport({ ...base, 'ipmi-lan': lan.replace('10.1.2.3', '0.0.0.0') }).bmc).toEqual({ address: null, mac: '3c:ec:ef:00:11:22' });
  });

  it('skips disks of size 0 (an empty reader) and NICs without a MAC; an unknown link speed is null', () => {
    const sysfs = 'block sdb sectors 0\nblock sdb model Card Reader\nnet ib0 address 80:00:00:48:fe:80:00:00:00:00:00:00\nnet eth1 address 52:54:00:00:00:02\nnet eth1 speed 10000\n';
    const f = parseFactsReport({ ...base, sysfs });
    expect(f.disks).toEqual([]);
    expect(f.nics).toEqual([{ name: 'eth1', mac: '52:54:00:00:00:02', driver: null, speedMbps: 10000, firmware: null }]);
  });

  it('parseDmidecode keeps each structure\'s key/value lines and leaves list items out', () => {
    const text = 'Handle 0x1100, DMI type 17, 40 bytes\nMemory Device\n\tSize: 16 GB\n\tLocator: DIMM A1\nHandle 0x1101, DMI type 17, 40 bytes\nMemory Device\n\tSize: No Module Installed\n\tFlags:\n\t\tPCI is supported\n';
    expect(parseDmidecode(text)).toEqual([
      { type: 17, values: { Size: '16 GB', Locator: 'DIMM A1' } },
      { type: 17, values: { Size: 'No Module Installed', Flags: '' } },
    ]);
  });
});

describe('flattenFacts, drift and filters', () => {
  const facts = parseFactsReport(fixture('host-virtio.json'));
  const changed = (edit: (f: Facts) => void): Facts => {
    const copy = structuredClone(facts);
    edit(copy);
    return copy;
  };

  it('flattens to the keys lists, filters and selectors use; unknown values left out', () => {
    const flat = flattenFacts(facts);
    expect(flat).toMatchObject({ 'cpu.vendor': 'AMD', 'cpu.threads': 2, memory_gb: 23.5, 'disks.count': 1, disks_gb: 256, 'nics.count': 1 });
    expect(flat).not.toHaveProperty('system.vendor');
    expect(matchesSelector(parseSelector('facts.cpu.vendor=AMD'), { site: null, subnet: null, labels: {}, facts: flat })).toBe(true);
    expect(matchesSelector(parseSelector('facts.cpu.vendor=Intel'), { site: null, subnet: null, labels: {}, facts: flat })).toBe(false);
    expect(matchesSelector(parseSelector('facts.cpu.vendor=AMD'), { site: null, subnet: null, labels: {}, facts: null })).toBe(false);
  });

  it('no drift between identical boots; memory, disks, NICs, CPUs and firmware changes are named with before and after', () => {
    expect(hardwareDrift(facts, structuredClone(facts))).toEqual([]);
    expect(hardwareDrift(facts, changed((f) => (f.memory.bytes = 2 * 1024 ** 3)))).toEqual([{ key: 'memory.bytes', before: 24683748 * 1024, after: 2 * 1024 ** 3 }]);
    expect(hardwareDrift(facts, changed((f) => (f.disks = [])))).toEqual([
      { key: 'disk[173663363932679].bytes', before: 274877906944, after: null },
    ]);
    expect(hardwareDrift(facts, changed((f) => (f.cpu.threads = 1)))).toEqual([{ key: 'cpu.threads', before: 2, after: 1 }]);
    expect(hardwareDrift(facts, changed((f) => (f.firmware.version = '2.1')))).toEqual([{ key: 'firmware.version', before: null, after: '2.1' }]);
    expect(hardwareDrift(changed((f) => (f.nics[0]!.speedMbps = 10000)), changed((f) => (f.nics[0]!.speedMbps = 1000)))).toEqual([
      { key: 'nic[02:fc:00:00:00:01].speedMbps', before: 10000, after: 1000 },
    ]);
    // A link down on one boot (speed unknown) is no change; a disk renamed (sda -> sdb) with the same serial is none either.
    expect(hardwareDrift(changed((f) => (f.nics[0]!.speedMbps = 10000)), facts)).toEqual([]);
    expect(hardwareDrift(facts, changed((f) => (f.disks[0]!.name = 'vdb')))).toEqual([]);
  });

  it('parses fact filters with every operator, numbers as numbers, and names what is wrong', () => {
    expect(parseFactFilter('memory_gb>=256')).toEqual({ key: 'memory_gb', op: '>=', value: 256 });
    expect(parseFactFilter('cpu.vendor = AMD')).toEqual({ key: 'cpu.vendor', op: '=', value: 'AMD' });
    for (const op of ['=', '!=', '<', '<=', '>', '>=']) expect(parseFactFilter(`cpu.threads${op}2`).op).toBe(op);
    expect(() => parseFactFilter('memory_gb')).toThrow(/^fact: cannot read "memory_gb"/);
    expect(() => parseFactFilter('Memory;drop>=1')).toThrow(/invalid fact key/);
    expect(() => parseFactFilter('cpu.vendor>AMD')).toThrow('> compares numbers; use = or != for text');
    expect(() => parseFactFilter('cpu.vendor=', 'querystring.fact')).toThrow(/^querystring\.fact: cpu\.vendor= needs a value/);
  });
});
