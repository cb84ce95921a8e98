import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { buildImage, type BuildResult } from '../../src/builder/index.js';
import { BootLab, type TracedBoot } from './helpers/boot-lab.js';
import { startIpmiVm, startRedfishVm, type BmcVm } from './helpers/bmc-vm.js';

/**
 * A fleet rollout on real VMs with real BMCs: three diskless VMs, each behind its own ipmi_sim
 * (Debian's openipmi) in the lab namespace, which starts the VM's QEMU on "chassis power on"
 * and stops it on "off" through QEMU's ipmi-bmc-extern link. Livery knows them only by MAC,
 * labels and BMC credentials, and boots them by an assignment rule.
 *
 *   1. `livery power on --selector role=fleet`: all three boot v1 and its agent reports healthy;
 *   2. `livery rollout start v2 --waves 1,100%`: the canary, then the other two, are cycled by
 *      their BMCs into v2 and come back healthy, with no other action;
 *   3. `livery rollout start v3`, whose recipe's health command fails in these VMs: the canary
 *      reports unhealthy, the rollout halts and cycles it back to v2, healthy; the other two
 *      are never touched (no new boot in their traces or consoles);
 *   4. one more machine, behind the test Redfish BMC (which drives QEMU through QMP): switched
 *      on, then `livery power cycle` through the Redfish driver makes it boot again.
 *
 * The three images are real builds of one recipe (images/minimal plus health lines) from the
 * builder's cache: the same packages, different /etc/livery/health, which the real agent reads
 * and runs in the real VM.
 */
const CACHE = '/var/cache/livery/test-builder';
const MINIMAL = resolve('images/minimal/recipe');
/** Bounds, not expectations: TCG boots of three VMs at once on a shared two-core machine, however loaded. */
const BOOT_MS = 25 * 60_000;
const isRoot = process.getuid?.() === 0;

interface Published {
  id: string;
  version: string;
}
interface RolloutShown {
  id: string;
  state: string;
  reason: string | null;
  waves: { wave: number; state: string; reason: string | null; machines: { hostname: string; state: string; phase: string; cycles: number }[] }[];
}

/** The health lines of each version; v3's check fails on these diskless VMs, which have no disk at all. */
const VERSIONS: Record<string, string[]> = {
  '1': [],
  '2': ['health command "ip -4 addr show dev eth0 | grep -q inet"'],
  '3': ['health command "test -e /dev/disk/by-label/data || { echo no data disk: /dev/disk/by-label/data is missing; exit 1; }"', 'health timeout 5'],
};

// Each step starts from where the one before left the fleet: a step cannot be run again on its own.
describe.skipIf(!isRoot)('a rollout across three VMs with IPMI BMCs (needs root, QEMU, ipmi_sim)', { retry: 0 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'livery-e2e-rollout-'));
  const started = Date.now();
  let step = Date.now();
  let lab: BootLab;
  const images: Record<string, Published> = {};
  const fleet: BmcVm[] = [];
  /** Machines outside the rollouts (the Redfish one). */
  const others: BmcVm[] = [];

  const cli = <T>(args: string[]) => lab.livery.cli<T>(args);
  /** Prints how long this step took and the time so far (the lead quotes these). */
  const timed = (what: string) => {
    const now = Date.now();
    console.log(`e2e rollout: ${what} took ${Math.round((now - step) / 1000)} s (${Math.round((now - started) / 1000)} s in all)`);
    step = now;
  };
  const keepOnFailure = (tag: string) => onTestFailed(() => [...fleet, ...others].forEach((vm) => vm.keep(tag)));

  const boots = async (mac: string): Promise<TracedBoot[]> => (await cli<{ boots: TracedBoot[] }>(['machine', 'trace', mac, '--boots', '50'])).boots;
  /** Boots the agent reported, read from the VM's own console (all its power-ons, appended). */
  const consoleBoots = (vm: BmcVm) => vm.console().match(/livery-agent: booted image /g)?.length ?? 0;

  /** Waits until the machine's latest boot reached a health verdict on `imageId`. */
  async function healthyOn(vm: BmcVm, imageId: string): Promise<TracedBoot> {
    const deadline = Date.now() + BOOT_MS;
    for (;;) {
      const last = (await boots(vm.mac)).at(-1);
      if (last?.imageId === imageId && last.reached === 'healthy') return last;
      if (last?.imageId === imageId && last.reached === 'unhealthy') throw new Error(`${vm.hostname} is unhealthy on ${imageId}: ${JSON.stringify(last.stages.at(-1))}`);
      if (Date.now() > deadline) throw new Error(`${vm.hostname} not healthy on ${imageId} within ${BOOT_MS / 1000} s; last boot: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 3000));
    }
  }

  async function rolloutEnds(id: string): Promise<RolloutShown> {
    const deadline = Date.now() + 3 * BOOT_MS;
    for (;;) {
      const r = await cli<RolloutShown>(['rollout', 'show', id]);
      if (['succeeded', 'failed', 'rolled-back', 'aborted'].includes(r.state)) return r;
      if (Date.now() > deadline) throw new Error(`rollout ${id} still ${r.state} after ${(3 * BOOT_MS) / 1000} s: ${JSON.stringify(r)}`);
      await new Promise((r) => setTimeout(r, 3000));
    }
  }

  beforeAll(async () => {
    const builds: Record<string, BuildResult> = {};
    for (const [version, health] of Object.entries(VERSIONS)) {
      const dir = join(work, 'recipes', `fleet-${version}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'recipe'), [`%include ${MINIMAL}`, 'name fleet', `version ${version}`, ...health, ''].join('\n'));
      builds[version] = await buildImage({ recipePath: join(dir, 'recipe'), outDir: join(work, 'bundles'), cacheDir: CACHE });
    }
    timed('three builds from the cache');
    lab = await BootLab.open(work, { tag: 'roll', label: 'IPMI BMCs' });
    const { accel } = await lab.accel('bios');
    for (const [version, build] of Object.entries(builds)) {
      images[version] = await cli<Published>(['image', 'publish', build.bundlePath, ...(version === '1' ? ['--channel', 'stable'] : [])]);
    }
    for (let i = 1; i <= 3; i++) {
      const vm = await startIpmiVm({
        lab,
        dir: join(work, `fleet-${i}`),
        mac: `52:54:00:e2:f0:0${i}`,
        hostname: `fleet-${i}`,
        bmcAddress: lab.net.hostAddress(10 + i),
        vmPort: 9000 + i,
        accel,
      });
      fleet.push(vm);
      // fleet-1 is the canary; the others sit in two racks.
      const labels = ['role=fleet', i === 1 ? 'canary=true' : `rack=r${i}`].flatMap((l) => ['--label', l]);
      await cli(['machine', 'add', '--mac', vm.mac, '--hostname', vm.hostname, ...labels, ...vm.bmcOptions]);
    }
    await cli(['assign', 'add', '--selector', 'role=fleet', '--image', 'fleet@stable']);
    timed('livery, three BMCs, machines and the assignment');
  }, 30 * 60_000);

  afterAll(async () => {
    try {
      for (const vm of [...fleet, ...others]) await vm.stop();
      await lab?.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
      console.log(`e2e rollout: total ${Math.round((Date.now() - started) / 1000)} s`);
    }
  });

  it(
    'livery power on --selector boots all three through their BMCs into v1, and each one reports healthy',
    async () => {
      keepOnFailure('power-on');
      for (const vm of fleet) expect(await cli<{ image: { id: string } | null }>(['machine', 'explain', vm.mac])).toMatchObject({ image: { id: images['1']!.id } });
      const power = await cli<{ ok: number; failed: number; results: { machine: string; state: string }[] }>(['power', 'on', '--selector', 'role=fleet']);
      expect(power).toMatchObject({ ok: 3, failed: 0 });
      expect(power.results.map((r) => r.state)).toEqual(['off', 'off', 'off']);
      for (const vm of fleet) {
        const boot = await healthyOn(vm, images['1']!.id);
        // A real verdict of the agent's checks (minimal's ssh unit), not "no checks".
        expect(boot.stages.at(-1)).toMatchObject({ stage: 'healthy', event: 'healthy' });
      }
      const status = await cli<{ results: { state: string }[] }>(['power', 'status', '--selector', 'role=fleet']);
      expect(status.results.map((r) => r.state)).toEqual(['on', 'on', 'on']);
      for (const vm of fleet) expect(consoleBoots(vm)).toBe(1);
      timed('power on and three boots into v1');
    },
    BOOT_MS + 60_000,
  );

  it(
    'rollout start v2 --waves 1,100%: the canary, then the other two, are cycled into v2 and come back healthy, with no other action',
    async () => {
      keepOnFailure('rollout-v2');
      const start = await cli<RolloutShown>(['rollout', 'start', images['2']!.id, '--selector', 'role=fleet', '--waves', '1,100%', '--soak', '5s', '--boot-timeout', '25m', '--channel', 'stable']);
      const r = await rolloutEnds(start.id);
      expect(r).toMatchObject({ state: 'succeeded' });
      expect(r.waves.map((w) => [w.state, w.machines.map((m) => m.hostname)])).toEqual([
        ['passed', ['fleet-1']],
        ['passed', expect.arrayContaining(['fleet-2', 'fleet-3'])],
      ]);
      for (const vm of fleet) {
        await healthyOn(vm, images['2']!.id);
        expect(consoleBoots(vm)).toBe(2);
      }
      const channels = await cli<{ name: string; channel: string; imageId: string }[]>(['image', 'channels']);
      expect(channels.find((c) => c.name === 'fleet' && c.channel === 'stable')?.imageId).toBe(images['2']!.id);
      timed('rollout of v2 (two waves, three power cycles)');
    },
    3 * BOOT_MS,
  );

  it(
    "rollout start v3 with a failing health check: the canary reports unhealthy, the rollout halts and cycles it back to v2, healthy; the others are never touched",
    async () => {
      keepOnFailure('rollout-v3');
      const before = new Map<string, number>();
      for (const vm of fleet) before.set(vm.mac, (await boots(vm.mac)).length);
      const start = await cli<RolloutShown>(['rollout', 'start', images['3']!.id, '--selector', 'role=fleet', '--waves', '1,100%', '--soak', '5s', '--boot-timeout', '25m']);
      const r = await rolloutEnds(start.id);
      expect(r).toMatchObject({ state: 'failed', reason: 'wave 1 failed' });
      const [canaryWave, rest] = r.waves;
      expect(canaryWave).toMatchObject({ state: 'failed' });
      // The failing check's own output, as the agent in the VM reported it.
      expect(canaryWave!.reason).toContain('fleet-1');
      expect(canaryWave!.reason).toContain('command test -e /dev/disk/by-label/data');
      expect(canaryWave!.reason).toContain('no data disk: /dev/disk/by-label/data is missing');
      expect(rest!.state).toBe('pending');
      expect(canaryWave!.machines).toEqual([expect.objectContaining({ hostname: 'fleet-1', phase: 'back', state: 'healthy' })]);

      const [canary, ...others] = fleet;
      const back = await healthyOn(canary!, images['2']!.id);
      expect(back.stages.at(-1)).toMatchObject({ stage: 'healthy', event: 'healthy' });
      const canaryBoots = await boots(canary!.mac);
      // One boot into v3 (unhealthy), one back into v2.
      expect(canaryBoots.slice(before.get(canary!.mac)).map((b) => [b.imageId, b.reached])).toEqual([
        [images['3']!.id, 'unhealthy'],
        [images['2']!.id, 'healthy'],
      ]);
      expect(consoleBoots(canary!)).toBe(4);
      for (const vm of others) {
        expect((await boots(vm.mac)).length).toBe(before.get(vm.mac));
        expect(consoleBoots(vm)).toBe(2);
      }
      timed('rollout of v3: canary up unhealthy, halt, rollback to v2');
    },
    3 * BOOT_MS,
  );

  it(
    'one more boot: livery power cycle through the Redfish driver restarts a running VM (QMP behind the BMC), which boots healthy',
    async () => {
      keepOnFailure('redfish');
      const { accel } = await lab.accel('bios');
      const rf = await startRedfishVm({ lab, dir: join(work, 'fleet-4'), mac: '52:54:00:e2:f0:04', hostname: 'fleet-4', bmcAddress: lab.net.hostAddress(14), accel });
      others.push(rf);
      await cli(['machine', 'add', '--mac', rf.mac, '--hostname', rf.hostname, '--label', 'role=redfish', '--image', 'fleet', '--channel', 'stable', ...rf.bmcOptions]);
      expect(await cli(['power', 'on', rf.mac])).toMatchObject({ ok: 1, results: [{ state: 'off', bmc: `redfish://root@${lab.net.hostAddress(14)}:443` }] });
      // Running: its firmware asks for an address. The cycle comes now, long before a phone-home.
      const deadline = Date.now() + BOOT_MS;
      while (!(await boots(rf.mac)).at(-1)?.stages.some((s) => s.stage === 'dhcp')) {
        if (Date.now() > deadline) throw new Error('fleet-4 never asked for an address after its power-on');
        await new Promise((r) => setTimeout(r, 2000));
      }
      const before = (await boots(rf.mac)).length;
      expect(await cli(['power', 'cycle', rf.mac])).toMatchObject({ ok: 1, results: [{ state: 'on' }] });
      expect(rf.backend.resets).toEqual(['On', 'PowerCycle']);
      expect(rf.backend.starts).toBe(2);
      // Both starts used livery's one-time PXE override.
      expect(rf.bmc.bootsWithOverride).toEqual(['Pxe', 'Pxe']);
      const boot = await healthyOn(rf, (await cli<Published>(['image', 'show', 'fleet@stable'])).id);
      expect(boot.stages.at(-1)).toMatchObject({ stage: 'healthy', event: 'healthy' });
      expect((await boots(rf.mac)).length).toBeGreaterThan(before);
      // The first start was cut off before its agent ran: one phone-home in the console, after the cycle.
      expect(consoleBoots(rf)).toBe(1);
      timed('Redfish: power on, cycle through the driver, one boot into the stable image');
    },
    BOOT_MS + 2 * 60_000,
  );
});
