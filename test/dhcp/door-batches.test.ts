import { afterEach, expect, it, vi } from 'vitest';
import { MachineCache, type WriteOp } from '../../src/cmdb/index.js';
import { nodeName, resolveConfig } from '../../src/config/index.js';
import { dhcpBootPath } from '../../src/daemon/dhcp-door.js';
import { CHECK_INTERVAL_MS } from '../../src/cmdb/machine-cache.js';
import { manifestFor, randomArtifacts } from '../helpers/bundle.js';
import { describeEngines } from '../helpers/cmdb-engines.js';
import { tempDir } from '../helpers/tmp.js';

describeEngines('The DHCP door’s cache: the machines a batch registered, taken in once per batch, and the images plans name', (rig) => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('takes each batch in once however many commits joined it, and then knows every machine it registered', async () => {
    const dir = tempDir();
    const cmdb = rig().open();
    const writer = cmdb.openWriter();
    cleanups.push(dir.cleanup, () => cmdb.close(), () => writer.close());
    const boot = dhcpBootPath(cmdb, resolveConfig({ dataDir: dir.path }), writer);
    const takenIn = vi.spyOn(MachineCache.prototype, 'remember');
    const discover = (mac: string): WriteOp => ({
      kind: 'boot-step',
      step: { stage: 'dhcp-discover', mac, machineId: null, imageId: null, discover: true, door: 'dhcp', detail: { firmware: 'bios' }, at: Date.now() },
    });
    const macs = Array.from({ length: 12 }, (_, i) => `52:54:00:00:10:${i.toString(16).padStart(2, '0')}`);

    // Handed over together, as the DHCP loop's stretches do while a commit is in flight: the
    // first commit leaves at once, the eleven others wait for it and share the next batch.
    await Promise.all(macs.map((mac) => boot.commit([discover(mac)])));

    const outcomes = takenIn.mock.calls.map(([outcome]) => outcome);
    expect(outcomes).toHaveLength(2);
    expect(new Set(outcomes).size).toBe(2);
    expect(outcomes.flatMap((o) => o.discovered.map(([mac]) => mac)).sort()).toEqual(macs);
    for (const mac of macs) expect(boot.machine(mac)).toMatchObject({ id: cmdb.machines.byCanonicalMac(mac)!.id, state: 'discovered', macs: [mac] });
  });

  it('resolves a machine’s image from its cache, and names a newly promoted one within the check interval', async () => {
    const dir = tempDir();
    const cmdb = rig().open();
    const writer = cmdb.openWriter();
    cleanups.push(dir.cleanup, () => cmdb.close(), () => writer.close());
    const config = resolveConfig({ dataDir: dir.path });
    const boot = dhcpBootPath(cmdb, config, writer);
    const v1 = cmdb.images.insert('00000000-0000-4000-8000-0000000000a1', manifestFor('web', 'v1', randomArtifacts({ rootfs: 1024 })));
    const v2 = cmdb.images.insert('00000000-0000-4000-8000-0000000000a2', manifestFor('web', 'v2', randomArtifacts({ rootfs: 1024 })));
    for (const image of [v1, v2]) cmdb.imageNodes.markReady(image.id, nodeName(config));
    cmdb.images.promote(v1.id, 'stable', 'test');
    const mac = '52:54:00:00:20:01';
    cmdb.machines.create({ macs: [mac], image: { name: 'web', channel: 'stable', id: null } });
    const client = { mac, archCode: 0, userClasses: [], hasIpxeOption: false, vendorClass: null, subnetHint: null };
    const plan = () => boot.plan(client, { machine: boot.machine(mac), subnetContaining: () => null }).image?.id;
    const resolved = vi.spyOn(cmdb.images, 'resolve');

    expect([plan(), plan(), plan()]).toEqual([v1.id, v1.id, v1.id]);
    expect(resolved).toHaveBeenCalledTimes(1);
    cmdb.images.promote(v2.id, 'stable', 'test');
    await new Promise((r) => setTimeout(r, CHECK_INTERVAL_MS + 5));
    expect(plan()).toBe(v2.id);
  });
});
