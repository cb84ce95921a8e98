import { afterEach, expect, it, vi } from 'vitest';
import { MachineCache, type WriteOp } from '../../src/cmdb/index.js';
import { resolveConfig } from '../../src/config/index.js';
import { dhcpBootPath } from '../../src/daemon/dhcp-door.js';
import { describeEngines } from '../helpers/cmdb-engines.js';
import { tempDir } from '../helpers/tmp.js';

describeEngines('The DHCP door’s commits: the machines a batch registered are taken into its cache once per batch', (rig) => {
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
});
