import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admit, allowedFailures, cumulativeTargets, orderMachines, parseMaxFailures, parseWaves, planWaves, PlanError, type PaceState, type PlannedMachine } from '../../src/rollout/plan.js';

const machine = fc.record({
  site: fc.constantFrom(null, 'par1', 'fra1'),
  rack: fc.constantFrom(undefined, 'r1', 'r2', 'r3'),
  canary: fc.boolean(),
});
const fleet = fc.array(machine, { maxLength: 300 }).map((ms) =>
  ms.map(
    (m, i): PlannedMachine => ({
      id: (i * 7919) % 100_003 + 1,
      site: m.site,
      labels: { ...(m.rack ? { rack: m.rack } : {}), ...(m.canary ? { canary: 'true' } : {}) },
    }),
  ),
);
const waveSpec = fc
  .array(fc.oneof(fc.integer({ min: 1, max: 50 }).map(String), fc.integer({ min: 1, max: 99 }).map((p) => `${p}%`)), { maxLength: 5 })
  .map((items) => [...items, '100%'].join(','));

describe('wave planner (properties)', () => {
  it('puts every selected machine in exactly one wave, none empty, canaries first', () => {
    fc.assert(
      fc.property(fleet, waveSpec, (machines, spec) => {
        const waves = planWaves(machines, parseWaves(spec));
        const flat = waves.flat();
        expect(flat.sort((a, b) => a - b)).toEqual(machines.map((m) => m.id).sort((a, b) => a - b));
        expect(new Set(flat).size).toBe(flat.length);
        for (const w of waves) expect(w.length).toBeGreaterThan(0);
        const order = waves.flat();
        const isCanary = (id: number) => machines.find((m) => m.id === id)!.labels.canary === 'true';
        const firstOther = order.findIndex((id) => !isCanary(id));
        if (firstOther >= 0) expect(order.slice(firstOther).some(isCanary)).toBe(false);
      }),
    );
  });

  it('cuts waves at cumulative targets: counts as given, percentages rounded up, never more than the fleet', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), waveSpec, (total, spec) => {
        const cuts = cumulativeTargets(parseWaves(spec), total);
        for (let i = 1; i < cuts.length; i++) expect(cuts[i]!).toBeGreaterThan(cuts[i - 1]!);
        expect(cuts.at(-1) ?? 0).toBe(total);
      }),
    );
    expect(cumulativeTargets(parseWaves('1,10%,50%,100%'), 1000)).toEqual([1, 100, 500, 1000]);
    expect(cumulativeTargets(parseWaves('1,10%,50%,100%'), 5)).toEqual([1, 3, 5]);
    expect(cumulativeTargets(parseWaves('1,10%,50%,100%'), 3)).toEqual([1, 2, 3]);
    expect(cumulativeTargets(parseWaves('33%,100%'), 3)).toEqual([1, 3]);
  });

  it('is stable: the same fleet in any input order gives the same waves', () => {
    fc.assert(
      fc.property(fleet, waveSpec, fc.integer(), (machines, spec, seed) => {
        const shuffled = [...machines].sort((a, b) => ((a.id * seed) % 101) - ((b.id * seed) % 101));
        expect(planWaves(shuffled, parseWaves(spec))).toEqual(planWaves(machines, parseWaves(spec)));
      }),
    );
  });

  it('spreads across racks and sites: the first k non-canaries come from min(k, groups) groups', () => {
    fc.assert(
      fc.property(fleet, fc.integer({ min: 1, max: 20 }), (machines, k) => {
        const others = orderMachines(machines).filter((m) => m.labels.canary !== 'true');
        const group = (m: PlannedMachine) => `${m.site}/${m.labels.rack}`;
        const groups = new Set(others.map(group)).size;
        expect(new Set(others.slice(0, k).map(group)).size).toBe(Math.min(k, groups, others.length));
      }),
    );
  });

  it('pacing never lets more than maxParallel machines boot at once, and fills the room it has', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom<PaceState>('queued', 'booting', 'done'), { maxLength: 200 }), fc.integer({ min: 1, max: 64 }), (states, maxParallel) => {
        const started = admit(states, maxParallel);
        const booting = states.filter((s) => s === 'booting').length;
        for (const i of started) expect(states[i]).toBe('queued');
        expect(booting + started.length).toBeLessThanOrEqual(Math.max(maxParallel, booting));
        const queued = states.filter((s) => s === 'queued').length;
        expect(started.length).toBe(Math.min(queued, Math.max(0, maxParallel - booting)));
        expect(started).toEqual([...started].sort((a, b) => a - b));
      }),
    );
  });

  it('a simulated wave under admit() peaks at exactly min(maxParallel, wave size) machines booting', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 16 }), fc.infiniteStream(fc.nat()), (size, maxParallel, picks) => {
        const states: PaceState[] = Array.from({ length: size }, () => 'queued');
        const it = picks[Symbol.iterator]();
        let peak = 0;
        while (states.some((s) => s !== 'done')) {
          for (const i of admit(states, maxParallel)) states[i] = 'booting';
          const booting = states.flatMap((s, i) => (s === 'booting' ? [i] : []));
          peak = Math.max(peak, booting.length);
          states[booting[it.next().value % booting.length]!] = 'done';
        }
        expect(peak).toBe(Math.min(size, maxParallel));
      }),
    );
  });
});

describe('wave and failure specs', () => {
  it('refuses malformed specs naming the field and what is allowed', () => {
    for (const bad of ['', '0', '1,50%', '10%,x,100%', '150%', '-1,100%']) expect(() => parseWaves(bad), bad).toThrow(PlanError);
    expect(() => parseWaves('1,50%')).toThrow("waves: the last wave must be 100% so every selected machine is in one (got '50%')");
    expect(() => parseMaxFailures('lots')).toThrow("maxFailures: expected a count or a percentage of each wave such as 0, 2 or 10% (got 'lots')");
  });

  it('failure budgets: counts per wave, percentages of the wave rounded down', () => {
    expect(allowedFailures(parseMaxFailures('0'), 100)).toBe(0);
    expect(allowedFailures(parseMaxFailures('2'), 1)).toBe(2);
    expect(allowedFailures(parseMaxFailures('10%'), 5)).toBe(0);
    expect(allowedFailures(parseMaxFailures('10%'), 30)).toBe(3);
  });
});
