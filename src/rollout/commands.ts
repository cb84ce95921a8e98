import { conflict, invalid } from '../cmdb/errors.js';
import type { Cmdb } from '../cmdb/index.js';
import type { Rollout } from '../cmdb/rollouts.js';
import { formatSelector, parseSelector } from '../cmdb/selector.js';
import type { Actor } from '../cmdb/types.js';
import { checkChannel } from '../cmdb/validate.js';
import type { Config } from '../config/index.js';
import { httpProcessCount } from '../daemon/processes.js';
import { heldByDrift } from '../facts/record.js';
import { parseDuration } from './durations.js';
import { parseMaxFailures, parseWaves, planWaves, PlanError } from './plan.js';
import { rolloutEvent } from './record.js';

export interface StartRequest {
  image: string;
  selector: string;
  channel?: string | null;
  waves?: string;
  maxParallel?: number;
  bootTimeout?: string;
  maxFailures?: string;
  soak?: string;
}

/**
 * Machines booting at once when --max-parallel is not given: each booting machine holds about
 * two TFTP transfers (the firmware's loader fetch and its retry) and one large HTTP stream
 * (kernel, initrd, rootfs one after the other); one HTTP process keeps ~32 such streams at line
 * rate. So: min(tftp.maxTransfers / 2, 32 × HTTP processes), at least 1.
 */
export function defaultMaxParallel(config: Config): number {
  const tftp = config.tftp.enabled ? Math.floor(config.tftp.maxTransfers / 2) : Infinity;
  return Math.max(1, Math.min(tftp, 32 * httpProcessCount(config.http.workers)));
}

/** Rejections of a start request, as CMDB field errors (HTTP 400). */
function field<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PlanError) throw invalid(name, err.message.replace(/^[a-zA-Z]+: /, ''));
    throw err;
  }
}

/** Plans and records a new rollout; the engine picks it up from the CMDB. */
export function startRollout(cmdb: Cmdb, config: Config, req: StartRequest, actor: Actor): Rollout {
  const image = cmdb.images.find(req.image);
  if (!image) throw invalid('image', `no image with id ${req.image}`);
  const selector = parseSelector(req.selector);
  const channel = req.channel ? checkChannel('channel', req.channel) : null;
  const wavesText = req.waves ?? '1,10%,50%,100%';
  const targets = field('waves', () => parseWaves(wavesText));
  const maxFailures = req.maxFailures ?? '0';
  field('maxFailures', () => parseMaxFailures(maxFailures));
  const bootTimeoutMs = field('bootTimeout', () => parseDuration('bootTimeout', req.bootTimeout ?? '10m'));
  const soakMs = field('soak', () => parseDuration('soak', req.soak ?? '2m'));
  if (bootTimeoutMs < 1000) throw invalid('bootTimeout', 'must be at least 1s');
  const maxParallel = req.maxParallel ?? defaultMaxParallel(config);
  if (!Number.isInteger(maxParallel) || maxParallel < 1 || maxParallel > 10_000) throw invalid('maxParallel', `expected a whole number from 1 to 10000 (got ${maxParallel})`);
  return cmdb.change(actor, 'rollout.start', (r: Rollout) => `rollout ${r.id}`, () => {
    const machines = cmdb.machines.matching(selector).filter((m) => m.state === 'registered' && !heldByDrift(m, config));
    if (machines.length === 0) {
      const why = config.facts.onDrift === 'retire' ? ' (machines labelled drift=hardware are left out: facts.onDrift is retire)' : '';
      throw invalid('selector', `no registered machine matches ${formatSelector(selector)}${why}`);
    }
    const busy = cmdb.rollouts.machinesBusyElsewhere(machines.map((m) => m.id));
    if (busy.length > 0) throw conflict('selector', `${busy.length} of the selected machines are in another active rollout (machine ids ${busy.slice(0, 10).join(', ')})`);
    const waves = planWaves(machines, targets);
    const rollout = cmdb.rollouts.create({ imageId: image.id, selector: formatSelector(selector), channel, targets: wavesText, maxParallel, bootTimeoutMs, maxFailures, soakMs, actor }, waves);
    rolloutEvent(cmdb, rollout.id, image.id, { state: 'running', machines: machines.length, waves: waves.map((w) => w.length), image: `${image.name} ${image.version}` });
    return rollout;
  }, { image: image.id, selector: formatSelector(selector) });
}

const TRANSITIONS: Record<'pause' | 'resume' | 'abort', { from: Rollout['state'][]; to: Rollout['state'] }> = {
  pause: { from: ['running'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  abort: { from: ['running', 'paused', 'rolling-back'], to: 'aborted' },
};

/** pause (no new power actions; boots under way are still watched), resume, abort (stop where it is). */
export function changeRollout(cmdb: Cmdb, id: number, action: keyof typeof TRANSITIONS, actor: Actor): Rollout {
  return cmdb.change(actor, `rollout.${action}`, `rollout ${id}`, () => {
    const r = cmdb.rollouts.get(id);
    const t = TRANSITIONS[action];
    if (!t.from.includes(r.state)) throw conflict('state', `rollout ${id} is ${r.state}; ${action} applies to a rollout that is ${t.from.join(' or ')}`);
    cmdb.rollouts.update(id, { state: t.to, reason: `${action} by ${actor}` });
    rolloutEvent(cmdb, id, r.imageId, { state: t.to, by: actor });
    return cmdb.rollouts.get(id);
  });
}

/**
 * Points every machine the rollout changed back at its previous image and power-cycles it (the
 * engine does the cycling, paced as the rollout was). A channel the rollout moved is moved back.
 */
export function rollBackRollout(cmdb: Cmdb, id: number, actor: Actor, reason = `rollback by ${actor}`): Rollout {
  return cmdb.change(actor, 'rollout.rollback', `rollout ${id}`, () => {
    const r = cmdb.rollouts.get(id);
    if (r.state === 'rolling-back' || r.state === 'rolled-back') throw conflict('state', `rollout ${id} is already ${r.state}`);
    if (r.state === 'succeeded' && r.channel) {
      const image = cmdb.images.get(r.imageId);
      const current = cmdb.images.channels().find((c) => c.name === image.name && c.channel === r.channel);
      if (current?.imageId === r.imageId) {
        const change = cmdb.images.rollback(image.name, r.channel, actor);
        cmdb.events.add({ type: 'image-rolled-back', imageId: change.imageId, detail: { name: image.name, channel: r.channel, from: r.imageId, rollout: id } });
      }
    }
    revertChanged(cmdb, r, null);
    cmdb.rollouts.update(id, { state: 'rolling-back', reason });
    rolloutEvent(cmdb, id, r.imageId, { state: 'rolling-back', reason });
    return cmdb.rollouts.get(id);
  });
}

/** Queues every machine the rollout pinned (in one wave, or all) for the way back. Call inside a transaction. */
export function revertChanged(cmdb: Cmdb, r: Rollout, wave: number | null): number {
  let n = 0;
  for (const m of cmdb.rollouts.machines(r.id, wave ?? undefined)) {
    if (m.previousImage === null || m.phase === 'back') continue;
    cmdb.rollouts.updateMachine(r.id, m.machineId, { phase: 'back', state: 'queued', deadlineAt: null, cycleConfirmed: false, cycles: 0 });
    n++;
  }
  return n;
}
