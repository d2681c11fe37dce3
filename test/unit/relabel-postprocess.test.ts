import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChunkAction } from '../../data-schemas/d-lan';
import { ChunkAggregation } from '../../data-schemas/relabel';
import { aggregateChunk, aggregateChunkExplained } from '../../activities/relabel/postprocess';
import { findSafetyViolation } from '../../activities/robot/station/safety';
import { SafetyLimits } from '../../data-schemas/station';

const DEFAULTS = ChunkAggregation.parse({});

const step = fc.double({ min: -0.03, max: 0.03, noNaN: true });
const action = fc.tuple(step, step, step, fc.constantFrom<0 | 1>(0, 1)).map((a): ChunkAction => a);
/** Gripper changes are rare in real data: runs of constant gripper with occasional switches. */
const chunk = fc.array(fc.tuple(step, step, step, fc.integer({ min: 0, max: 9 })), { maxLength: 80 }).map((rows) => {
  let g: 0 | 1 = 1;
  return rows.map(([dx, dy, dz, r]): ChunkAction => {
    if (r === 0) g = g === 1 ? 0 : 1;
    return [dx, dy, dz, g];
  });
});
const chunks = fc.oneof(chunk, fc.array(action, { maxLength: 40 }));
const options = fc.record({
  perAxisMeters: fc.double({ min: 0.001, max: 0.1, noNaN: true }),
  absoluteMeters: fc.double({ min: 0.001, max: 0.2, noNaN: true }),
});
const context = fc.option(fc.constantFrom(0, 1), { nil: undefined }).map((g) => (g === undefined ? {} : { previousGripper: g }));

const total = (xs: readonly ChunkAction[]): [number, number, number] =>
  xs.reduce<[number, number, number]>((s, a) => [s[0] + a[0], s[1] + a[1], s[2] + a[2]], [0, 0, 0]);
const dedup = (xs: readonly number[]): number[] => xs.filter((g, i) => i === 0 || g !== xs[i - 1]);

describe('aggregateChunk: properties', () => {
  it('conserves the total displacement', () => {
    fc.assert(
      fc.property(chunks, options, context, (xs, o, c) => {
        const before = total(xs);
        const after = total(aggregateChunk(xs, o, c));
        for (let k = 0; k < 3; k++) expect(Math.abs((after[k] as number) - (before[k] as number))).toBeLessThan(1e-9);
      }),
    );
  });

  it('keeps the gripper sequence (consecutive repeats removed) unchanged', () => {
    fc.assert(
      fc.property(chunks, options, context, (xs, o, c) => {
        expect(dedup(aggregateChunk(xs, o, c).map((a) => a[3]))).toEqual(dedup(xs.map((a) => a[3])));
      }),
    );
  });

  it('never emits a command longer than the absolute cap', () => {
    fc.assert(
      fc.property(chunks, options, context, (xs, o, c) => {
        for (const a of aggregateChunk(xs, o, c)) expect(Math.hypot(a[0], a[1], a[2])).toBeLessThanOrEqual(o.absoluteMeters);
      }),
    );
  });

  it('with the defaults, every command passes a default station\'s safety check', () => {
    const limits = SafetyLimits.parse({});
    expect(DEFAULTS.absoluteMeters).toBeLessThanOrEqual(limits.maxStepMeters);
    // Bridge-sized steps with the occasional jump (a dropped frame, a fast operator) of up to 20 cm.
    const big = fc.double({ min: -0.12, max: 0.12, noNaN: true });
    const rough = fc.array(fc.tuple(fc.oneof(step, big), fc.oneof(step, big), fc.oneof(step, big), fc.constantFrom<0 | 1>(0, 1)), { maxLength: 60 });
    // Diagonal motion: every axis stays under 2.5 cm while the norm approaches the cap.
    const diagonal = fc.array(fc.double({ min: 0.004, max: 0.012, noNaN: true }), { minLength: 1, maxLength: 30 }).map((ms) => ms.map((m): ChunkAction => [m, -m, m, 1]));
    fc.assert(
      fc.property(fc.oneof(chunks, rough, diagonal), context, (xs, c) => {
        const out = aggregateChunk(xs, DEFAULTS, c);
        // Only the per-step limit is in question here: the workspace box depends on where the arm is.
        const v = findSafetyViolation(out.length > 0 ? out : [[0, 0, 0, 1]], [0, 0, 0, 0, 0, 0, 1], { ...limits, bounds: { min: [-100, -100, -100], max: [100, 100, 100] } });
        expect(v).toBeNull();
      }),
    );
  });

  it('emits one command per source step at most, except for the parts of a step longer than the cap', () => {
    fc.assert(
      fc.property(chunks, options, context, (xs, o, c) => {
        // A step of norm n > cap becomes ceil(n / cap) parts (one more where float rounding needs it).
        const bound = xs.reduce((n, a) => {
          const norm = Math.hypot(a[0], a[1], a[2]);
          return n + (norm <= o.absoluteMeters ? 1 : Math.ceil(norm / o.absoluteMeters) + 1);
        }, 0);
        expect(aggregateChunk(xs, o, c).length).toBeLessThanOrEqual(bound);
      }),
    );
    expect(aggregateChunk([], DEFAULTS)).toEqual([]);
    expect(aggregateChunk([], DEFAULTS, { previousGripper: 0 })).toEqual([]);
  });

  it('says truly why each command was emitted: a threshold, the cap, a transition or the end', () => {
    fc.assert(
      fc.property(chunks, options, context, (xs, o, c) => {
        const out = aggregateChunkExplained(xs, o, c);
        out.forEach(({ action: a, reason, next }, i) => {
          const previous = i === 0 ? c.previousGripper : out[i - 1]!.action[3];
          const following = out[i + 1];
          switch (reason) {
            case 'axis':
              expect(Math.max(Math.abs(a[0]), Math.abs(a[1]), Math.abs(a[2]))).toBeGreaterThanOrEqual(o.perAxisMeters);
              break;
            case 'cap':
              expect(next).toBeDefined();
              expect(Math.hypot(a[0] + next![0], a[1] + next![1], a[2] + next![2])).toBeGreaterThan(o.absoluteMeters);
              expect(following?.action[3]).toBe(a[3]);
              break;
            case 'transition':
              expect(previous).toBeDefined();
              expect(a[3]).not.toBe(previous);
              break;
            case 'before_transition':
              expect(following?.reason).toBe('transition');
              break;
            case 'end':
              expect(following).toBeUndefined();
              break;
          }
          // A command whose gripper differs from the one before is always the transition itself.
          if (previous !== undefined && a[3] !== previous) expect(reason).toBe('transition');
        });
      }),
    );
  });

  it('isolates every transition: the changing step is emitted alone (or as its first part) with the new gripper value', () => {
    fc.assert(
      fc.property(chunks, options, (xs, o) => {
        const out = aggregateChunk(xs, o);
        const changes = xs.flatMap((a, i) => (i > 0 && a[3] !== xs[i - 1]![3] ? [a] : []));
        const emitted = out.filter((a, i) => i > 0 && a[3] !== out[i - 1]![3]);
        expect(emitted).toHaveLength(changes.length);
        emitted.forEach((e, k) => {
          const a = changes[k]!;
          const parts = Math.hypot(a[0], a[1], a[2]) / Math.hypot(e[0], e[1], e[2]);
          if (Math.hypot(a[0], a[1], a[2]) <= o.absoluteMeters) expect(e).toEqual([0 + a[0], 0 + a[1], 0 + a[2], a[3]]);
          else for (let ax = 0; ax < 3; ax++) expect(Math.abs(e[ax]! * parts - a[ax]!)).toBeLessThan(1e-12);
        });
      }),
    );
  });
});

describe('aggregateChunk: worked examples', () => {
  it('sums 1 cm steps into 2.5 cm commands and flushes the remainder', () => {
    const xs: ChunkAction[] = Array.from({ length: 7 }, (): ChunkAction => [0.01, 0, 0, 1]);
    const out = aggregateChunk(xs, DEFAULTS);
    expect(out.map((a) => a[3])).toEqual([1, 1, 1]);
    expect(out[0]![0]).toBeCloseTo(0.03, 12);
    expect(out[1]![0]).toBeCloseTo(0.03, 12);
    expect(out[2]![0]).toBeCloseTo(0.01, 12);
  });

  it('closes a command before the step that would take it past 5 cm, though no axis reached 2.5 cm', () => {
    // 4 diagonal steps make 3 cm per axis (5.2 cm): one command would exceed a station's 5 cm step.
    const xs: ChunkAction[] = Array.from({ length: 4 }, (): ChunkAction => [0.0075, 0.0075, 0.0075, 1]);
    const out = aggregateChunkExplained(xs, DEFAULTS);
    expect(out.map((c) => c.reason)).toEqual(['cap', 'end']);
    expect(out[0]!.action[0]).toBeCloseTo(0.0225, 12);
    expect(out[1]!.action[0]).toBeCloseTo(0.0075, 12);
  });

  it('splits a step longer than the cap into equal parts', () => {
    const out = aggregateChunk([[0.12, 0, 0, 1]], DEFAULTS);
    expect(out).toHaveLength(3);
    for (const a of out) {
      expect(a[0]).toBeCloseTo(0.04, 12);
      expect(a[3]).toBe(1);
    }
    // A transition step that long: its first part carries the change, alone; the rest moves on with the new value.
    const closing = aggregateChunkExplained([[0, 0, -0.08, 0]], DEFAULTS, { previousGripper: 1 });
    expect(closing.map((c) => [c.reason, c.action])).toEqual([
      ['transition', [0, 0, -0.04, 0]],
      ['axis', [0, 0, -0.04, 0]],
    ]);
  });

  it('puts the gripper change where it happened', () => {
    const xs: ChunkAction[] = [
      [0.01, 0, -0.01, 1],
      [0.01, 0, -0.01, 1],
      [0.001, 0, 0, 0],
      [0, 0, 0.01, 0],
      [0, 0, 0.01, 0],
      [0, 0, 0.01, 0],
    ];
    const out = aggregateChunk(xs, DEFAULTS);
    expect(out).toHaveLength(3);
    expect(out[0]![0]).toBeCloseTo(0.02, 12);
    expect(out[0]![3]).toBe(1);
    expect(out[1]).toEqual([0.001, 0, 0, 0]);
    expect(out[2]![2]).toBeCloseTo(0.03, 12);
    expect(out[2]![3]).toBe(0);
  });

  it('isolates a transition on the first step when given the previous gripper', () => {
    const xs: ChunkAction[] = [
      [0, 0, 0.001, 0],
      [0, 0, 0.01, 0],
    ];
    expect(aggregateChunk(xs, DEFAULTS)).toHaveLength(1);
    const out = aggregateChunk(xs, DEFAULTS, { previousGripper: 1 });
    expect(out).toEqual([
      [0, 0, 0.001, 0],
      [0, 0, 0.01, 0],
    ]);
  });
});
