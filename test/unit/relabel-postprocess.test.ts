import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChunkAction } from '../../data-schemas/d-lan';
import { ChunkAggregation } from '../../data-schemas/relabel';
import { aggregateChunk } from '../../activities/relabel/postprocess';

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
const reaches = (a: ChunkAction, o: ChunkAggregation): boolean =>
  Math.abs(a[0]) >= o.perAxisMeters || Math.abs(a[1]) >= o.perAxisMeters || Math.abs(a[2]) >= o.perAxisMeters || Math.hypot(a[0], a[1], a[2]) >= o.absoluteMeters;

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

  it('never lengthens the chunk; empty stays empty', () => {
    fc.assert(
      fc.property(chunks, options, context, (xs, o, c) => {
        expect(aggregateChunk(xs, o, c).length).toBeLessThanOrEqual(xs.length);
      }),
    );
    expect(aggregateChunk([], DEFAULTS)).toEqual([]);
    expect(aggregateChunk([], DEFAULTS, { previousGripper: 0 })).toEqual([]);
  });

  it('emits below-threshold commands only before a transition, at a transition or at the end', () => {
    fc.assert(
      fc.property(chunks, options, context, (xs, o, c) => {
        const out = aggregateChunk(xs, o, c);
        out.forEach((a, i) => {
          if (reaches(a, o) || i === out.length - 1) return;
          const previous = i === 0 ? c.previousGripper : out[i - 1]![3];
          const isTransition = previous !== undefined && previous !== a[3];
          const beforeTransition = out[i + 1]![3] !== a[3];
          expect(isTransition || beforeTransition).toBe(true);
        });
      }),
    );
  });

  it('isolates every transition: the changing step is emitted alone with the new gripper value', () => {
    fc.assert(
      fc.property(chunks, options, (xs, o) => {
        const out = aggregateChunk(xs, o);
        const changes = xs.flatMap((a, i) => (i > 0 && a[3] !== xs[i - 1]![3] ? [a] : []));
        const emitted = out.filter((a, i) => i > 0 && a[3] !== out[i - 1]![3]);
        expect(emitted).toEqual(changes.map((a) => [0 + a[0], 0 + a[1], 0 + a[2], a[3]]));
      }),
    );
  });

  it('is idempotent: aggregating the output again changes nothing', () => {
    fc.assert(
      fc.property(chunks, options, context, (xs, o, c) => {
        const once = aggregateChunk(xs, o, c);
        expect(aggregateChunk(once, o, c)).toEqual(once);
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

  it('emits on the absolute threshold when no single axis reaches its own', () => {
    const xs: ChunkAction[] = Array.from({ length: 4 }, (): ChunkAction => [0.008, 0.008, 0.008, 1]);
    // per-axis 2.5 cm is reached first at 4 steps (3.2 cm); a 2 cm absolute fires after 2 steps.
    expect(aggregateChunk(xs, { perAxisMeters: 0.025, absoluteMeters: 0.02 })).toHaveLength(2);
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
