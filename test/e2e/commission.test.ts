import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuildResult } from '../../src/builder/index.js';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { chooseAccel } from '../../src/lab/vm/index.js';
import { startBoardBmc, type BoardBmc } from './helpers/bmc-vm.js';
import { ARTIFACTS, BootLab } from './helpers/boot-lab.js';

/**
 * Commissioning with a real VM: an unknown machine (2 vCPUs, 1 GiB, one 2 GiB virtio disk, an
 * IPMI BMC on its KCS interface: ipmi_sim in the lab's namespace) on a subnet with policy
 * commission boots the commission image, whose agent reports the hardware and which then powers
 * the machine off; livery registers it with what the VM really has, and records its BMC's
 * address without credentials, which the operator then sets. Booted again with 2 GiB, it raises
 * hardware-changed with the memory diff and gets the drift label.
 */
// The cache the builder's tests and the boot e2e share: the bootstrapped base is made once.
const CACHE = '/var/cache/livery/test-builder';
const COMMISSION = resolve('images/commission/recipe');
const MAC = '52:54:00:e2:c0:01';
const DISK_BYTES = 2 * 1024 ** 3;
const GIB = 1024 ** 3;
// Where the BMC's VM interface listens for the guest's QEMU (the lab namespace's loopback).
const BMC_VM_PORT = 9023;
// The commission image's last console line before it powers off.
const REPORTED = /livery-commission: hardware reported; powering off/;
// A bound, not an expectation: under TCG a full boot takes 2-3 minutes on two idle cores.
const BOOT_MS = 8 * 60_000;
const isRoot = process.getuid?.() === 0;

interface Facts {
  flat: Record<string, string | number>;
  facts: {
    disks: { name: string; serial: string | null; bytes: number }[];
    nics: { mac: string }[];
    memory: { bytes: number; dimms: number | null; source: string };
    bmc: { address: string | null; mac: string | null } | null;
  };
  changes?: { key: string; before: unknown; after: unknown }[];
}

describe.skipIf(!isRoot)('commissioning a real VM (needs root, QEMU)', () => {
  const work = mkdtempSync(join(tmpdir(), 'livery-e2e-commission-'));
  const disk = join(work, 'disk0.raw');
  let lab: BootLab;
  let build: BuildResult;
  let bmc: BoardBmc;
  const cli = <T>(args: string[]) => lab.livery.cli<T>(args);
  const machine = (memoryMiB: number) => ({ cpus: 2, memoryMiB, disks: [disk], bmc: bmc.qemu });

  beforeAll(async () => {
    const probe = chooseAccel('bios');
    build = await buildImage({ recipePath: COMMISSION, outDir: join(work, 'bundles'), cacheDir: CACHE });
    await probe;
    // Sparse: the guest sees 2 GiB, the host stores what is written (nothing).
    writeFileSync(disk, '');
    truncateSync(disk, DISK_BYTES);
    lab = await BootLab.open(work, { tag: 'e2ecm' });
    bmc = await startBoardBmc({ lab, dir: join(work, 'bmc'), bmcAddress: lab.net.hostAddress(10), vmPort: BMC_VM_PORT });
    await cli(['image', 'publish', build.bundlePath, '--channel', 'stable']);
    await cli(['subnet', 'set', 'lab', '--policy', 'commission']);
  }, 30 * 60_000);

  afterAll(async () => {
    try {
      await bmc?.sim.stop();
      await lab?.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it(
    'an unknown VM is commissioned: registered with its CPU count, memory, disk size and NIC MAC, then powered off',
    async () => {
      await expect(cli(['machine', 'show', MAC])).rejects.toThrow(/404/);
      await lab.boot('commission-1g', { mac: MAC, firmware: 'bios', until: REPORTED, timeoutMs: BOOT_MS, machine: machine(1024) });
      expect(await cli<{ state: string }>(['machine', 'show', MAC])).toMatchObject({ state: 'registered' });
      const f = await cli<Facts>(['machine', 'facts', MAC]);
      expect(f.flat).toMatchObject({ 'cpu.threads': 2, memory_gb: 1, 'disks.count': 1, 'nics.count': 1 });
      // dmidecode in the image sees QEMU's one DIMM: installed memory, not what the kernel keeps for itself.
      expect(f.facts.memory).toEqual({ bytes: GIB, dimms: 1, source: 'dimms' });
      expect(f.facts.disks).toEqual([expect.objectContaining({ name: 'vda', serial: 'disk0', bytes: DISK_BYTES })]);
      expect(f.facts.nics.map((n) => n.mac)).toEqual([MAC]);
      // The guest's ipmi_si found the BMC (SMBIOS/ACPI) and ipmitool read its LAN channel in-band.
      expect(f.facts.bmc).toEqual({ address: bmc.sim.address, mac: bmc.sim.mac });
      // What the VM sent, kept for refreshing test/fixtures/facts.
      mkdirSync(ARTIFACTS, { recursive: true });
      writeFileSync(join(ARTIFACTS, 'commission-vm-report.json'), JSON.stringify(await cli(['machine', 'facts', MAC, '--raw'])));
    },
    BOOT_MS + 60_000,
  );

  it('its BMC is recorded with the address it reported and no credentials; power works once the operator sets them', async () => {
    const shown = await cli<{ bmc: unknown }>(['machine', 'show', MAC]);
    expect(shown.bmc).toMatchObject({ driver: 'ipmi', address: bmc.sim.address, port: null, username: null, passwordSet: false });
    await expect(cli(['power', 'status', MAC])).rejects.toThrow(`BMC at ${bmc.sim.address} has no credentials yet`);
    const passwordFile = join(work, 'bmc-password');
    writeFileSync(passwordFile, `${bmc.sim.password}\n`, { mode: 0o600 });
    await cli(['machine', 'set', MAC, '--bmc', `ipmi://${bmc.sim.username}@${bmc.sim.address}`, '--bmc-password-file', passwordFile]);
    // The VM powered itself off after its report: the BMC (reached over the lab network) says so.
    expect(await cli(['power', 'status', MAC])).toMatchObject({ ok: 1, results: [{ state: 'off', bmc: `ipmi://${bmc.sim.username}@${bmc.sim.address}:623` }] });
  });

  it(
    'booted again with 2 GiB it raises hardware-changed with the memory diff and is labelled drift=hardware',
    async () => {
      await lab.boot('commission-2g', { mac: MAC, firmware: 'bios', until: REPORTED, timeoutMs: BOOT_MS, machine: machine(2048) });
      const diff = await cli<Facts>(['machine', 'facts', MAC, '--diff']);
      expect(diff.changes).toEqual([{ key: 'memory.bytes', before: GIB, after: 2 * GIB }]);
      // The event, as the SSE stream (inside the lab's namespace) would carry it: read from the CMDB file.
      const cmdb = openCmdb(databasePath(join(work, 'e2ecm', 'livery')));
      try {
        const raised = cmdb.events.tail(0, 100_000).filter((e) => e.type === 'hardware-changed');
        expect(raised).toEqual([expect.objectContaining({ mac: MAC, detail: expect.objectContaining({ changes: diff.changes, onDrift: 'label' }) })]);
      } finally {
        cmdb.close();
      }
      expect(await cli<{ labels: Record<string, string> }>(['machine', 'show', MAC])).toMatchObject({ labels: { drift: 'hardware' } });
      const drifted = await cli<{ macs: string[] }[]>(['machine', 'list', '--label', 'drift=hardware', '--fact', 'memory_gb>=2']);
      expect(drifted.map((m) => m.macs[0])).toEqual([MAC]);
    },
    BOOT_MS + 60_000,
  );
});
