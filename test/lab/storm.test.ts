import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStormRig, type StormRig } from '../../bench/storm.js';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { ResponseReader } from '../../src/lab/storm/http-response.js';
import { stormMac } from '../../src/lab/storm/identity.js';
import { STAGES } from '../../src/lab/storm/machine.js';
import { PERCENTILES, percentile } from '../../src/lab/storm/report.js';
import { parseBootScript } from '../../src/lab/storm/script.js';
import { NETNS_SKIP } from '../helpers/netns.js';
import { tempDir } from '../helpers/tmp.js';

const CLIENTS = 20;
const SIZES = { kernel: 48 * 1024, initrd: 160 * 1024, rootfs: 512 * 1024 };

describe.skipIf(NETNS_SKIP)('boot storm against livery serve in private namespaces', () => {
  const dir = tempDir('livery-storm-');
  let rig: StormRig;

  beforeAll(async () => {
    rig = await startStormRig(dir.path, { machines: CLIENTS, sizes: SIZES });
  });

  afterAll(async () => {
    await rig?.close();
    dir.cleanup();
  });

  it(`boots ${CLIENTS} machines at once, each with the image on its channel`, async () => {
    const report = await rig.storm({ clients: CLIENTS, deadlineS: 90 });
    expect(report.errors, `livery's log:\n${rig.serverLog().slice(-4000)}`).toEqual([]);
    expect(report).toMatchObject({ clients: CLIENTS, ok: CLIENTS, failures: 0 });
    expect(report.machines.map((m) => m.mac)).toEqual(Array.from({ length: CLIENTS }, (_, i) => stormMac(i)));
    for (const m of report.machines) expect(m).toMatchObject({ ok: true, imageId: rig.imageId, failure: null });
    // Each machine leased its own address from the pool and fetched from it.
    expect(new Set(report.machines.map((m) => m.ip)).size).toBe(CLIENTS);
    for (const m of report.machines) expect(m.ip).toMatch(/^10\.150\.(1[2-9]\d|2[0-5]\d)\.\d+$/);
    for (const stage of STAGES) {
      expect(report.stages[stage].count).toBe(CLIENTS);
      expect(report.stages[stage].p50).toBeGreaterThan(0);
      expect(report.stages[stage].p50).toBeLessThanOrEqual(report.stages[stage].max);
    }
    for (const p of PERCENTILES) expect(STAGES).toContain(report.slowestStage[p]);
    expect(report.artifacts.bytes).toBe(CLIENTS * (SIZES.kernel + SIZES.initrd + SIZES.rootfs));
    expect(report.totalSeconds).toBeGreaterThan(0);
    // The simulator's own wait is reported beside the stages it may have stretched.
    expect(report.simulatorLoopDelay.p99).toBeGreaterThan(0);
    expect(report.simulatorLoopDelay.p99).toBeLessThanOrEqual(report.simulatorLoopDelay.max);
  });

  it('left the trail a real boot leaves in the CMDB: a lease per machine, TFTP, script and artifact events', () => {
    const cmdb = openCmdb(databasePath(rig.dataDir));
    try {
      const leased = new Set(cmdb.leases.list().map((l) => l.mac));
      for (let i = 0; i < CLIENTS; i++) {
        const mac = stormMac(i);
        expect(leased).toContain(mac);
        const types = cmdb.events.forMac(mac).map((e) => e.type);
        expect(types).toEqual(expect.arrayContaining(['dhcp-offer', 'dhcp-ack', 'tftp', 'ipxe-script', 'artifact']));
        expect(types.filter((t) => t === 'artifact')).toHaveLength(3);
      }
    } finally {
      cmdb.close();
    }
  });

  it('counts a machine that ends with another image as failed, at the script stage', async () => {
    const report = await rig.storm({ clients: 2, deadlineS: 60, expectImageId: 'not-the-published-image' });
    expect(report).toMatchObject({ ok: 0, failures: 2, failuresByStage: { 'http-script': 2 } });
    expect(report.machines[0]!.imageId).toBe(rig.imageId);
    expect(report.errors[0]!.error).toContain('its channel points at not-the-published-image');
  });

  it('rollout mode: a real rollout in waves power-cycles every machine through its (simulated) Redfish BMC, and each boots the new image', async () => {
    const r = await rig.rollout({ clients: CLIENTS, waves: '1,50%,100%', deadlineS: 120 });
    expect(r.report.errors, `livery's log:\n${rig.serverLog().slice(-4000)}`).toEqual([]);
    expect(r.report).toMatchObject({ clients: CLIENTS, ok: CLIENTS, failures: 0 });
    expect(r.state).toBe('succeeded');
    // The canary alone, then up to half, then the rest: every machine in exactly one wave.
    expect(r.waves.map((w) => [w.machines, w.state])).toEqual([[1, 'passed'], [CLIENTS / 2 - 1, 'passed'], [CLIENTS / 2, 'passed']]);
    for (const w of r.waves) expect(w.seconds).toBeGreaterThan(0);
    // No more machines booting at once than the rollout allows.
    expect(r.report.concurrency).toBeLessThanOrEqual(r.maxParallel);
    const cmdb = openCmdb(databasePath(rig.dataDir));
    try {
      for (let i = 0; i < CLIENTS; i++) {
        const power = cmdb.events.forMac(stormMac(i)).filter((e) => e.type === 'power');
        expect(power.at(-1)?.detail).toMatchObject({ action: 'cycle', result: 'ok', bmc: expect.stringMatching(/^redfish:\/\/storm@10\.150\.1\.1:8443/) });
      }
    } finally {
      cmdb.close();
    }
  });
  it('rollout mode: a wave that fails is rolled back, and every machine it changed comes back through its BMC on its previous image', async () => {
    // Machine 7's BMC refuses livery's password: its power cycle fails, so the second wave halts
    // while the machines cycled with it are still booting, or have booted the new image.
    const r = await rig.rollout({ clients: CLIENTS, waves: '1,100%', deadlineS: 120, version: '3', wrongPasswordFor: [7] });
    expect(r.state).toBe('failed');
    expect(r.waves.map((w) => w.state)).toEqual(['passed', 'failed']);
    const cmdb = openCmdb(databasePath(rig.dataDir));
    try {
      const rollout = cmdb.rollouts.list(1)[0]!;
      // Every machine the failed wave changed was cycled back and came back healthy, but the one
      // whose BMC refuses livery (it was pinned too, so it is sent back, and refuses again).
      expect(rollout.reason).toBe('wave 2 failed; 1 machine(s) did not come back healthy on their previous image');
      const wave = cmdb.rollouts.machines(rollout.id, 1);
      const refused = wave.find((m) => cmdb.machines.get(m.machineId).hostname === 'storm7')!;
      expect(refused).toMatchObject({ state: 'failed', detail: { reason: expect.stringContaining('401') } });
      const back = wave.filter((m) => m !== refused);
      expect(back.length).toBe(CLIENTS - 2);
      for (const m of back) expect(m).toMatchObject({ phase: 'back', state: 'healthy' });
      // The simulator's last boot of each of them is on the image it had before (the first rollout's).
      const previous = back[0]!.expectedImageId;
      expect(previous).not.toBeNull();
      const last = new Map(r.report.machines.map((m) => [m.mac, m]));
      for (const m of back) expect(last.get(cmdb.machines.get(m.machineId).macs[0]!)).toMatchObject({ ok: true, imageId: previous });
    } finally {
      cmdb.close();
    }
  });
});

describe('boot script reading', () => {
  it('takes the URLs and image id from the kernel and initrd lines', () => {
    const script = [
      '#!ipxe',
      'echo livery: node1 booting storm 1',
      'kernel --name vmlinuz http://10.0.0.1:8080/images/abc/vmlinuz?mac=52:54:00:00:00:01 initrd=initrd.img livery.image=abc livery.rootfs=http://10.0.0.1:8080/images/abc/rootfs.squashfs?mac=52:54:00:00:00:01 console=tty0 || goto retry',
      'initrd --name initrd.img http://10.0.0.1:8080/images/abc/initrd.img?mac=52:54:00:00:00:01 || goto retry',
      'boot || goto retry',
    ].join('\n');
    expect(parseBootScript(script)).toEqual({
      ok: true,
      targets: {
        kernelUrl: 'http://10.0.0.1:8080/images/abc/vmlinuz?mac=52:54:00:00:00:01',
        initrdUrl: 'http://10.0.0.1:8080/images/abc/initrd.img?mac=52:54:00:00:00:01',
        rootfsUrl: 'http://10.0.0.1:8080/images/abc/rootfs.squashfs?mac=52:54:00:00:00:01',
        imageId: 'abc',
      },
    });
  });

  it('passes on why a wait script boots nothing', () => {
    expect(parseBootScript('#!ipxe\necho livery: node1: no image on channel stable yet\nsleep 30\nchain --replace http://x/boot/m.ipxe\n')).toEqual({
      ok: false,
      error: 'script boots nothing: livery: node1: no image on channel stable yet',
    });
    expect(parseBootScript('<html>')).toMatchObject({ ok: false });
  });
});

describe('HTTP response reading', () => {
  const head = (length: number, extra = '') => Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${length}\r\n${extra}\r\n`);

  it('counts a body that arrives in pieces, headers split anywhere', () => {
    const whole = Buffer.concat([head(10), Buffer.from('0123456789')]);
    for (let cut = 1; cut < whole.length; cut++) {
      const r = new ResponseReader(true);
      expect(r.feed(whole.subarray(0, cut)).state).toBe('reading');
      expect(r.feed(whole.subarray(cut))).toEqual({ state: 'done', status: 200, bytes: 10, text: '0123456789', keepAlive: true });
    }
  });

  it('keeps its own copy of headers split across reads, as the caller reuses its read buffer', () => {
    const whole = Buffer.concat([head(3), Buffer.from('abc')]);
    const shared = Buffer.alloc(whole.length);
    const r = new ResponseReader(true);
    whole.copy(shared, 0, 0, 10);
    expect(r.feed(shared.subarray(0, 10)).state).toBe('reading');
    shared.fill(0x58);
    whole.copy(shared, 0, 10);
    expect(r.feed(shared.subarray(0, whole.length - 10))).toEqual({ state: 'done', status: 200, bytes: 3, text: 'abc', keepAlive: true });
  });

  it('refuses what livery never sends and what overruns', () => {
    expect(new ResponseReader(false).feed(Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n')).state).toBe('failed');
    expect(new ResponseReader(false).feed(Buffer.concat([head(2), Buffer.from('abc')]))).toMatchObject({ state: 'failed' });
    expect(new ResponseReader(false).feed(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toMatchObject({ state: 'failed' });
    expect(new ResponseReader(false).feed(head(0, 'connection: close\r\n'))).toMatchObject({ state: 'done', bytes: 0, keepAlive: false });
  });
});

describe('percentiles', () => {
  it('are nearest-rank', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([50, 95, 99, 100].map((p) => percentile(sorted, p))).toEqual([50, 95, 99, 100]);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBe(0);
  });
});
