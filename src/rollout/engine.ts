import type { Catalog } from '../catalog/index.js';
import type { Cmdb } from '../cmdb/index.js';
import type { Rollout, RolloutMachine } from '../cmdb/rollouts.js';
import type { Machine } from '../cmdb/types.js';
import { healthOf, type HealthVerdict } from '../health/verdict.js';
import type { Logger } from '../log.js';
import { Attention } from './attention.js';
import { revertChanged } from './commands.js';
import { admit, allowedFailures, parseMaxFailures, type PaceState } from './plan.js';
import type { RolloutPower } from './power.js';
import { machineEvent, rolloutEvent, waveEvent } from './record.js';

const ACTOR = 'livery:rollout';
const BOOTING = new Set(['cycling', 'booting']);
const DONE = new Set(['healthy', 'failed']);
/** Events a machine leaves on its way up: any of them after a power cycle shows the cycle happened. */
const BOOT_EVENTS = ['dhcp-discover', 'dhcp-offer', 'dhcp-ack', 'dhcp-nak', 'tftp', 'ipxe-script', 'artifact', 'booted'];

const pace = (m: RolloutMachine): PaceState => (m.state === 'queued' ? 'queued' : BOOTING.has(m.state) ? 'booting' : 'done');

/**
 * Drives rollouts from their state in the CMDB, one tick at a time: starts waves, pins and
 * power-cycles machines within max-parallel, reads each machine's health from the event log,
 * soaks, halts and rolls back, promotes the channel at the end. Nothing lives only in memory
 * but the power calls this process has under way: a restarted livery finds every step in the
 * tables and carries on (see resumeCycling for the one step a crash leaves uncertain).
 */
export class RolloutEngine {
  private timer: NodeJS.Timeout | null = null;
  /** `${rollout}:${machine}` of the power calls this process has made and not yet recorded. */
  private readonly calls = new Map<string, Promise<void>>();
  private readonly attention: Attention;

  constructor(
    private readonly cmdb: Cmdb,
    private readonly catalog: Catalog,
    private readonly power: RolloutPower,
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
  ) {
    this.attention = new Attention(cmdb);
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.calls.values()]);
  }

  /**
   * One pass over every active rollout. Synchronous (power calls run on in the background,
   * see cycle()), so two passes never interleave.
   */
  tick(now = Date.now()): void {
    try {
      const active = this.cmdb.rollouts.active();
      if (active.length === 0) return;
      this.attention.beginTick(now);
      for (const r of active) this.step(r, now);
    } catch (err) {
      this.logger.error({ err }, 'rollout engine tick failed');
    }
  }

  private step(r: Rollout, now: number): void {
    if (r.state === 'rolling-back') return this.stepBack(r, now);
    const wave = this.cmdb.rollouts.waves(r.id)[r.wave]!;
    if (wave.state === 'pending') {
      if (r.state === 'paused') return;
      this.cmdb.tx(() => {
        this.cmdb.rollouts.updateWave(r.id, r.wave, { state: 'running', started: true });
        for (const m of this.cmdb.rollouts.machines(r.id, r.wave)) this.cmdb.rollouts.updateMachine(r.id, m.machineId, { state: 'queued' });
        waveEvent(this.cmdb, r.id, r.imageId, r.wave, { state: 'running' });
      });
    }
    const all = this.attention.moved(r, wave.state === 'pending' ? 'running' : wave.state);
    const machines = this.cmdb.rollouts.machines(r.id, r.wave);
    const look = machines.filter((m) => this.attention.needsLook(r, m, now, all));
    for (const m of look) this.observe(r, m, now);
    // Power calls record their answers between ticks, never during one: unlooked rows are as read.
    const after = look.length > 0 ? this.cmdb.rollouts.machines(r.id, r.wave) : machines;
    const failed = after.filter((m) => m.state === 'failed');
    if (failed.length > allowedFailures(parseMaxFailures(r.maxFailures), after.length)) return this.halt(r, failed);
    const current = this.cmdb.rollouts.waves(r.id)[r.wave]!;
    if (current.state === 'running') {
      if (r.state === 'running') this.admitMachines(r, after, now, all);
      if (after.every((m) => DONE.has(m.state))) {
        this.cmdb.tx(() => {
          this.cmdb.rollouts.updateWave(r.id, r.wave, { state: 'soaking', soakUntil: now + r.soakMs });
          waveEvent(this.cmdb, r.id, r.imageId, r.wave, { state: 'soaking', until: new Date(now + r.soakMs).toISOString(), healthy: after.length - failed.length, failed: failed.length });
        });
      }
    } else if (current.state === 'soaking' && r.state === 'running' && now >= current.soakUntil!) {
      this.passWave(r);
    }
  }

  /**
   * Pins and cycles as many queued machines as pacing allows. Machines without a BMC are not
   * paced: when `all` are looked at (a wave's first tick, a rollback's), each is pinned at once
   * and waits for a reboot, so a later tick finds only machines livery cycles in the queue.
   */
  private admitMachines(r: Rollout, machines: RolloutMachine[], now: number, all: boolean): void {
    const states = machines.map(pace);
    if (all) {
      machines.forEach((m, i) => {
        if (m.state !== 'queued') return;
        const machine = this.cmdb.machines.find(m.machineId);
        if (!machine || this.power.hasBmc(machine)) return;
        this.begin(r, m, machine, now);
        states[i] = 'done';
      });
    }
    for (const i of admit(states, r.maxParallel)) {
      const machine = this.cmdb.machines.find(machines[i]!.machineId);
      if (machine) this.begin(r, machines[i]!, machine, now);
    }
  }

  /**
   * One machine's move (forward to the rollout's image, or back to its previous one): the pin,
   * the intent to cycle and the event in one transaction, then the power call, then its
   * outcome in another. A machine without a BMC is pinned and waits for a reboot.
   */
  private begin(r: Rollout, m: RolloutMachine, machine: Machine, now: number): void {
    const bmc = this.power.hasBmc(machine);
    const expected = this.cmdb.tx(() => {
      const sinceEventId = this.cmdb.events.lastId();
      let expectedImageId: string | null;
      if (m.phase === 'forward') {
        this.cmdb.machines.update(String(machine.id), { image: { id: r.imageId } });
        expectedImageId = r.imageId;
        if (m.previousImage === null) this.cmdb.rollouts.updateMachine(r.id, m.machineId, { previousImage: machine.image });
      } else {
        const previous = m.previousImage!;
        this.cmdb.machines.update(String(machine.id), { image: { name: previous.name, channel: previous.channel, id: previous.id } });
        expectedImageId = this.cmdb.images.resolve(previous)?.id ?? null;
      }
      const state = bmc ? 'cycling' : 'waiting-reboot';
      this.cmdb.rollouts.updateMachine(r.id, m.machineId, {
        state,
        expectedImageId,
        sinceEventId,
        cycleConfirmed: false,
        cycles: m.cycles + (bmc ? 1 : 0),
        deadlineAt: bmc ? now + r.bootTimeoutMs : null,
        detail: {},
      });
      machineEvent(this.cmdb, r.id, machine, expectedImageId, { state, phase: m.phase, wave: m.wave + 1 });
      return expectedImageId;
    });
    if (bmc) this.cycle(r, { ...m, state: 'cycling' }, machine, expected);
  }

  private cycle(r: Rollout, m: RolloutMachine, machine: Machine, expected: string | null): void {
    const key = `${r.id}:${m.machineId}`;
    const call = this.power
      .cycle(machine, { bootDevice: 'pxe' })
      .then(
        () => this.recordCycle(r, m, machine, expected, null),
        (err: Error) => this.recordCycle(r, m, machine, expected, err),
      )
      .catch((err: Error) => this.logger.error({ err, rollout: r.id, machine: machine.id }, 'recording a power cycle failed'))
      .finally(() => this.calls.delete(key));
    this.calls.set(key, call);
  }

  /** The power call's outcome, unless the rollout moved the machine on meanwhile (abort, rollback). */
  private recordCycle(r: Rollout, m: RolloutMachine, machine: Machine, expected: string | null, err: Error | null): void {
    this.cmdb.tx(() => {
      const now = this.cmdb.rollouts.machines(r.id, m.wave).find((x) => x.machineId === m.machineId);
      if (!now || now.state !== 'cycling' || now.phase !== m.phase) return;
      if (err) {
        const reason = `power cycle failed: ${err.message}`;
        this.cmdb.rollouts.updateMachine(r.id, m.machineId, { state: 'failed', detail: { reason } });
        machineEvent(this.cmdb, r.id, machine, expected, { state: 'failed', phase: m.phase, reason });
      } else {
        this.cmdb.rollouts.updateMachine(r.id, m.machineId, { state: 'booting', cycleConfirmed: true });
        machineEvent(this.cmdb, r.id, machine, expected, { state: 'booting', phase: m.phase });
      }
    });
  }

  /** Moves a machine on from what its health and the clock say. */
  private observe(r: Rollout, m: RolloutMachine, now: number): void {
    const machine = this.cmdb.machines.find(m.machineId);
    if (!machine) return this.finish(r, m, null, 'failed', { reason: 'the machine was deleted' });
    if (m.state === 'cycling') return this.resumeCycling(r, m, machine, now);
    if (m.state !== 'booting' && m.state !== 'waiting-reboot' && m.state !== 'healthy') return;
    if (m.expectedImageId === null) {
      if (m.state === 'healthy') return this.attention.lookedAt(r, m, Infinity);
      return this.finish(r, m, machine, 'healthy', { reason: 'its previous selection boots no image' });
    }
    const v = healthOf(this.cmdb, machine, { afterEventId: m.sinceEventId ?? 0, now });
    const onImage = v.imageId === m.expectedImageId;
    if (m.state === 'healthy') {
      if (onImage && v.state !== 'unhealthy') return this.attention.lookedAt(r, m, v.decidesAt ?? Infinity);
      return this.finish(r, m, machine, 'failed', verdictDetail(v, onImage ? 'turned unhealthy while soaking' : `rebooted into ${v.imageId ?? 'nothing'} while soaking`));
    }
    if (onImage && v.state === 'healthy') return this.finish(r, m, machine, 'healthy', { bootedAt: v.bootedAt, healthyAt: v.at });
    if (onImage && v.state === 'unhealthy') return this.finish(r, m, machine, 'failed', verdictDetail(v, v.reason ?? 'unhealthy'));
    if (m.deadlineAt !== null && now >= m.deadlineAt) {
      if (!m.cycleConfirmed && !this.bootedSince(machine, m)) return this.recycle(r, m, machine, now);
      const seen = v.imageId && !onImage ? `it booted ${v.imageId}, not ${m.expectedImageId}` : v.state === 'pending' ? 'booted, but no health report yet' : 'it did not phone home';
      return this.finish(r, m, machine, 'failed', verdictDetail(v, `not healthy on ${m.expectedImageId} within the boot timeout (${r.bootTimeoutMs / 1000} s): ${seen}`));
    }
    this.attention.lookedAt(r, m, Math.min(m.deadlineAt ?? Infinity, v.decidesAt ?? Infinity));
  }

  /**
   * A `cycling` row no call of this process stands behind: livery died between recording the
   * intent and recording the BMC's answer, so the cycle may or may not have happened. Wait for
   * the boot timeout as if it had; if by then the machine has shown no sign of booting (no
   * event at all since the intent), cycle it once more. So a machine is never cycled twice for
   * one boot, and never left uncycled.
   */
  private resumeCycling(r: Rollout, m: RolloutMachine, machine: Machine, now: number): void {
    if (this.calls.has(`${r.id}:${m.machineId}`)) return;
    this.cmdb.tx(() => {
      this.cmdb.rollouts.updateMachine(r.id, m.machineId, { state: 'booting', cycleConfirmed: this.bootedSince(machine, m), deadlineAt: Math.max(m.deadlineAt ?? 0, now + r.bootTimeoutMs) });
      machineEvent(this.cmdb, r.id, machine, m.expectedImageId, { state: 'booting', phase: m.phase, resumed: true });
    });
  }

  /** Whether the machine did anything on the network (DHCP, TFTP, HTTP, phone-home) since the intent. */
  private bootedSince(machine: Machine, m: RolloutMachine): boolean {
    return this.cmdb.events.latestOf(machine.macs, BOOT_EVENTS, m.sinceEventId ?? 0) !== null;
  }

  private recycle(r: Rollout, m: RolloutMachine, machine: Machine, now: number): void {
    if (m.cycles >= 2) return this.finish(r, m, machine, 'failed', { reason: 'no sign of a boot after two power cycles' });
    this.begin(r, m, machine, now);
  }

  private finish(r: Rollout, m: RolloutMachine, machine: Machine | null, state: 'healthy' | 'failed', detail: Record<string, unknown>): void {
    this.cmdb.tx(() => {
      this.cmdb.rollouts.updateMachine(r.id, m.machineId, { state, detail });
      if (machine) machineEvent(this.cmdb, r.id, machine, m.expectedImageId, { state, phase: m.phase, ...detail });
    });
  }

  /** Too many failures: the wave fails, and every machine it pinned goes back. Later waves are never touched. */
  private halt(r: Rollout, failed: RolloutMachine[]): void {
    const reason = failed
      .map((m) => {
        const d = m.detail as { reason?: string; failing?: { check: string; output: string }[] };
        const name = this.cmdb.machines.find(m.machineId)?.hostname ?? `machine ${m.machineId}`;
        const checks = (d.failing ?? []).map((f) => `\n  ${f.check}:\n    ${f.output.split('\n').join('\n    ')}`).join('');
        return `${name}: ${d.reason ?? 'failed'}${checks}`;
      })
      .join('\n');
    this.cmdb.change(ACTOR, 'rollout.halt', `rollout ${r.id}`, () => {
      this.cmdb.rollouts.updateWave(r.id, r.wave, { state: 'failed', reason, finished: true });
      waveEvent(this.cmdb, r.id, r.imageId, r.wave, { state: 'failed', failed: failed.length, reason });
      const reverting = revertChanged(this.cmdb, r, r.wave);
      this.cmdb.rollouts.update(r.id, { state: 'rolling-back', reason: `wave ${r.wave + 1} failed` });
      rolloutEvent(this.cmdb, r.id, r.imageId, { state: 'rolling-back', reason: `wave ${r.wave + 1} failed`, reverting });
    });
  }

  private passWave(r: Rollout): void {
    const last = r.wave === this.cmdb.rollouts.waves(r.id).length - 1;
    this.cmdb.change(ACTOR, last ? 'rollout.succeed' : 'rollout.wave', `rollout ${r.id}`, () => {
      this.cmdb.rollouts.updateWave(r.id, r.wave, { state: 'passed', finished: true });
      waveEvent(this.cmdb, r.id, r.imageId, r.wave, { state: 'passed' });
      if (!last) return this.cmdb.rollouts.update(r.id, { wave: r.wave + 1 });
      if (r.channel) this.promote(r, r.channel);
      this.cmdb.rollouts.update(r.id, { state: 'succeeded', reason: null });
      rolloutEvent(this.cmdb, r.id, r.imageId, { state: 'succeeded', channel: r.channel });
    });
  }

  /**
   * The channel moves to the rollout's image; machines that followed that channel before the
   * rollout pinned them follow it again (it now gives them the image they run: no reboot).
   */
  private promote(r: Rollout, channel: string): void {
    this.catalog.promote(r.imageId, channel, ACTOR);
    const image = this.cmdb.images.get(r.imageId);
    for (const m of this.cmdb.rollouts.machines(r.id)) {
      const p = m.previousImage;
      if (p && p.id === null && p.name === image.name && (p.channel ?? 'stable') === channel) {
        this.cmdb.machines.update(String(m.machineId), { image: { name: p.name, channel: p.channel, id: null } });
      }
    }
  }

  /** The way back: every machine queued for it, paced as the rollout, must come back healthy on its previous image. */
  private stepBack(r: Rollout, now: number): void {
    const all = this.attention.moved(r, undefined);
    const back = this.cmdb.rollouts.machines(r.id).filter((m) => m.phase === 'back');
    const look = back.filter((m) => this.attention.needsLook(r, m, now, all));
    for (const m of look) this.observe(r, m, now);
    const after = look.length > 0 ? this.cmdb.rollouts.machines(r.id).filter((m) => m.phase === 'back') : back;
    this.admitMachines(r, after, now, all);
    if (!after.every((m) => DONE.has(m.state))) return;
    const waves = this.cmdb.rollouts.waves(r.id);
    const halted = waves.some((w) => w.state === 'failed');
    const stuck = after.filter((m) => m.state === 'failed').length;
    this.cmdb.tx(() => {
      const state = halted ? 'failed' : 'rolled-back';
      const reason = `${r.reason ?? ''}${stuck > 0 ? `; ${stuck} machine(s) did not come back healthy on their previous image` : ''}`;
      this.cmdb.rollouts.update(r.id, { state, reason });
      rolloutEvent(this.cmdb, r.id, r.imageId, { state, reason, reverted: after.length - stuck, stuck });
    });
  }
}

function verdictDetail(v: HealthVerdict, reason: string): Record<string, unknown> {
  return { reason, ...(v.failing.length > 0 ? { failing: v.failing } : {}), ...(v.bootedAt ? { bootedAt: v.bootedAt } : {}) };
}
