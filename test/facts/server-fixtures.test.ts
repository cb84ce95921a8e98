/**
 * The facts parser on real servers' outputs (test/fixtures/facts/servers, sources in its
 * README): Dell, HPE and Supermicro dmidecode dumps with empty DIMM slots and unpopulated
 * sockets, and `ipmitool lan print` of real BMCs. The dumps' serials and UUIDs were replaced
 * with `--` by their publisher, which the parser takes for no value.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFactsReport } from '../../src/facts/parse.js';
import type { Facts, FactsReport } from '../../src/facts/types.js';

const DIR = 'test/fixtures/facts/servers';
const read = (name: string) => readFileSync(`${DIR}/${name}`, 'utf8');
const GIB = 1024 ** 3;

/**
 * A report as livery-facts sends it, around a real dump. No cpuinfo of these machines was
 * published: one `processor` line per thread, without topology (as arm64 kernels list them), so
 * sockets and cores come from the DMI table.
 */
function report(dmidecode: string, threads: number, ipmiLan = ''): FactsReport {
  const cpuinfo = Array.from({ length: threads }, (_, i) => `processor\t: ${i}\n`).join('');
  return { format: 1, cpuinfo, meminfo: 'MemTotal:       1024 kB\n', sysfs: '', dmidecode, 'ipmi-lan': ipmiLan };
}

interface Case {
  file: string;
  threads: number;
  system: Facts['system'];
  firmware: Facts['firmware'];
  cpu: Omit<Facts['cpu'], 'threads'>;
  memory: Facts['memory'];
}

const CASES: Case[] = [
  {
    // One of two sockets populated; DIMMs listed as "16384 MB" and "64 GB"; 14 empty slots.
    file: 'dell-poweredge-r740.dmidecode.txt',
    threads: 24,
    system: { vendor: 'Dell Inc.', product: 'PowerEdge R740', serial: null, uuid: null },
    firmware: { vendor: 'Dell Inc.', version: '2.15.1', date: '06/15/2022' },
    cpu: { vendor: 'Intel', model: 'Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz', sockets: 1, cores: 12 },
    memory: { bytes: 4 * 16 * GIB + 6 * 64 * GIB, dimms: 10, source: 'dimms' },
  },
  {
    // Two sockets; the BIOS (type 0) comes before the system (type 1) in this table; 20 empty slots.
    file: 'hpe-proliant-dl380-gen10.dmidecode.txt',
    threads: 16,
    system: { vendor: 'HPE', product: 'ProLiant DL380 Gen10', serial: null, uuid: null },
    firmware: { vendor: 'HPE', version: 'U30', date: '01/23/2021' },
    // The processors' manufacturer reads "Intel(R) Corporation" here: the same vendor as Dell's "Intel".
    cpu: { vendor: 'Intel', model: 'Intel(R) Xeon(R) Gold 5122 CPU @ 3.60GHz', sockets: 2, cores: 8 },
    memory: { bytes: 4 * 32 * GIB, dimms: 4, source: 'dimms' },
  },
  {
    // Two sockets; mixed 32 and 64 GB DIMMs; 2 empty slots.
    file: 'supermicro-sys-1029p-wtr.dmidecode.txt',
    threads: 48,
    system: { vendor: 'Supermicro', product: 'SYS-1029P-WTR', serial: null, uuid: null },
    firmware: { vendor: 'American Megatrends Inc.', version: '3.2', date: '10/16/2019' },
    cpu: { vendor: 'Intel', model: 'Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz', sockets: 2, cores: 24 },
    memory: { bytes: 8 * 32 * GIB + 2 * 64 * GIB, dimms: 10, source: 'dimms' },
  },
];

describe('parseFactsReport on real servers\' dmidecode dumps', () => {
  for (const c of CASES) {
    it(`${c.file}: system, firmware, populated sockets and their cores, installed DIMMs only`, () => {
      const f = parseFactsReport(report(read(c.file), c.threads));
      expect(f.system).toEqual(c.system);
      expect(f.firmware).toEqual(c.firmware);
      expect(f.cpu).toEqual({ threads: c.threads, ...c.cpu });
      expect(f.memory).toEqual(c.memory);
      expect(f.bmc).toBeNull();
    });
  }

  it('with a cpuinfo that has the topology, sockets and cores come from it, not from the table', () => {
    // The R740 as a kernel would list it with 2 sockets of 2 cores (the DMI table says 1 socket, 12 cores).
    const cpuinfo = [0, 1, 2, 3].map((i) => `processor\t: ${i}\nvendor_id\t: GenuineIntel\nphysical id\t: ${i >> 1}\ncore id\t\t: ${i & 1}\n`).join('');
    const f = parseFactsReport({ ...report(read('dell-poweredge-r740.dmidecode.txt'), 4), cpuinfo });
    expect(f.cpu).toMatchObject({ vendor: 'Intel', sockets: 2, cores: 4, threads: 4 });
  });
});

describe('parseFactsReport on real BMCs\' `ipmitool lan print`', () => {
  const dell = read('dell-poweredge-r740.dmidecode.txt');

  it('an HP iLO with an address from DHCP: its address and MAC', () => {
    expect(parseFactsReport(report(dell, 24, read('hp-ilo.ipmitool-lan.txt'))).bmc).toEqual({ address: '192.168.191.119', mac: '00:1b:78:df:c7:48' });
  });

  it('an Intel BMC whose address was never set (0.0.0.0): its MAC, no address', () => {
    expect(parseFactsReport(report(dell, 24, read('intel-bmc-unconfigured.ipmitool-lan.txt'))).bmc).toEqual({ address: null, mac: '00:1e:67:58:97:56' });
  });
});
