import type { Cmdb } from '../cmdb/index.js';
import type { Rollout, RolloutMachine, RolloutWave } from '../cmdb/rollouts.js';

/** How often a tick looks at every machine anyway: the bound on anything this shortcut could miss. */
const FULL_PASS_MS = 60_000;

/**
 * Which machines of a rollout a tick must look at. Looking costs a few queries per machine (its
 * record, its latest boot, its health report), every second, on the thread that also answers
 * DHCP; over a wave of hundreds that is most of a tick. Yet a machine's verdict changes only
 * with a new event of one of its MACs, when a deadline it waits on comes (the boot timeout, or
 * the health report's), or when its row is changed; otherwise it is as the last look left it.
 * So a tick looks at those, and at machines mid power cycle. Kept in memory as a shortcut only:
 * a fresh process, every FULL_PASS_MS, and a rollout whose state or wave has moved look at all.
 */
export class Attention {
  private mark = -1;
  private fullUntil = 0;
  private full = true;
  private changed = new Set<number>();
  /** Per rollout machine: the row as last looked at, and when its verdict can change without an event. */
  private readonly looked = new Map<string, { row: string; wakeAt: number }>();
  private readonly phases = new Map<number, string>();

  constructor(private readonly cmdb: Cmdb) {}

  /** Once per tick, before any rollout: which machines had events since the last tick. */
  beginTick(now: number): void {
    if (this.mark < 0 || now >= this.fullUntil) {
      this.full = true;
      this.mark = this.cmdb.events.lastId();
      this.fullUntil = now + FULL_PASS_MS;
      this.looked.clear();
      this.phases.clear();
      return;
    }
    this.full = false;
    const { macs, lastId } = this.cmdb.events.macsAfter(this.mark);
    this.mark = lastId;
    this.changed = new Set();
    for (const mac of macs) {
      const id = this.cmdb.machines.byCanonicalMac(mac)?.id;
      if (id !== undefined) this.changed.add(id);
    }
  }

  /** Whether this rollout's state, wave or wave state moved since the last tick: then every machine counts. */
  moved(r: Rollout, waveState: RolloutWave['state'] | undefined): boolean {
    const phase = `${r.state}:${r.wave}:${waveState}`;
    const moved = this.phases.get(r.id) !== phase;
    this.phases.set(r.id, phase);
    return this.full || moved;
  }

  /** Whether a tick must look at this machine: one whose verdict may have changed since the last look. */
  needsLook(r: Rollout, m: RolloutMachine, now: number, all: boolean): boolean {
    if (all || m.state === 'cycling') return true;
    if (m.state !== 'booting' && m.state !== 'waiting-reboot' && m.state !== 'healthy') return false;
    const last = this.looked.get(`${r.id}:${m.machineId}`);
    return !last || last.row !== signature(m) || now >= last.wakeAt || this.changed.has(m.machineId);
  }

  /** Records a look at a machine that left it as it was, and when its verdict can next change on its own. */
  lookedAt(r: Rollout, m: RolloutMachine, wakeAt: number): void {
    this.looked.set(`${r.id}:${m.machineId}`, { row: signature(m), wakeAt });
  }
}

const signature = (m: RolloutMachine) => `${m.state}:${m.phase}:${m.cycles}:${m.updatedAt}`;
