/**
 * The safety check every station runs on a chunk as a whole before anything moves
 * (docs/station-protocol.md). Pure: no clipping, no I/O. A chunk is safe when every action is four finite numbers,
 * its translation norm is at most `maxStepMeters`, its gripper lies in [0, 1], and every position
 * the end effector reaches (the current position plus the running sum of translations) lies inside
 * the workspace box. The box is convex, so the straight moves between those positions stay inside too.
 */
import type { SafetyLimits, WorkspaceBounds } from '../../../data-schemas/station';
import { StationSafetyError, type SafetyViolation } from './errors';

/** Slack for the running sums of float translations, meters. */
const EPS = 1e-9;
const AXES = ['x', 'y', 'z'] as const;

const fmt = (v: number): string => (Number.isFinite(v) ? String(Number(v.toFixed(6))) : String(v));

/** The first violation of the chunk from `state`, or null when it is safe. */
export function findSafetyViolation(chunk: readonly (readonly number[])[], state: readonly number[], limits: SafetyLimits): SafetyViolation | null {
  if (state.length !== 7 || !state.every(Number.isFinite)) {
    return { actionIndex: -1, limit: 'state', message: `the station state must be 7 finite numbers, got [${state.map(fmt).join(', ')}]` };
  }
  if (chunk.length === 0) return { actionIndex: -1, limit: 'shape', message: 'an action chunk needs at least one action' };
  const pos = [state[0] ?? 0, state[1] ?? 0, state[2] ?? 0];
  const { min, max } = limits.bounds;
  for (let i = 0; i < chunk.length; i++) {
    const raw: unknown = chunk[i];
    if (!Array.isArray(raw) || raw.length !== 4 || !raw.every((v) => typeof v === 'number')) {
      return { actionIndex: i, limit: 'shape', message: `action ${i} must be [dx, dy, dz, gripper] (4 numbers)` };
    }
    const a = raw as [number, number, number, number];
    const [dx, dy, dz, g] = a;
    const bad = a.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) return { actionIndex: i, limit: 'finite', message: `action ${i}: ${['dx', 'dy', 'dz', 'gripper'][bad]} is ${a[bad]}, must be a finite number` };
    if (g < 0 || g > 1) return { actionIndex: i, limit: 'gripper_range', message: `action ${i}: gripper ${fmt(g)} is outside [0, 1] (1 open, 0 closed)` };
    const norm = Math.hypot(dx, dy, dz);
    if (norm > limits.maxStepMeters + EPS) {
      return { actionIndex: i, limit: 'max_step', message: `action ${i}: translation ${fmt(norm)} m exceeds the max step of ${fmt(limits.maxStepMeters)} m` };
    }
    pos[0] = (pos[0] ?? 0) + dx;
    pos[1] = (pos[1] ?? 0) + dy;
    pos[2] = (pos[2] ?? 0) + dz;
    for (let k = 0; k < 3; k++) {
      const p = pos[k] ?? 0;
      const lo = min[k] ?? 0;
      const hi = max[k] ?? 0;
      if (p < lo - EPS || p > hi + EPS) {
        return {
          actionIndex: i,
          limit: 'workspace',
          message: `action ${i}: ${AXES[k]} would reach ${fmt(p)} m, outside the workspace [${fmt(lo)}, ${fmt(hi)}] m`,
        };
      }
    }
  }
  return null;
}

/** Throws StationSafetyError naming the first offending action and the limit; returns when safe. */
export function assertChunkSafe(chunk: readonly (readonly number[])[], state: readonly number[], limits: SafetyLimits): void {
  const v = findSafetyViolation(chunk, state, limits);
  if (v) throw new StationSafetyError(v);
}

/** The box inside both `a` and `b` (e.g. the configured bounds and what a simulator can reach). */
export function intersectBounds(a: WorkspaceBounds, b: WorkspaceBounds): WorkspaceBounds {
  const lo = (k: number): number => Math.max(a.min[k] ?? -Infinity, b.min[k] ?? -Infinity);
  const hi = (k: number): number => Math.min(a.max[k] ?? Infinity, b.max[k] ?? Infinity);
  for (let k = 0; k < 3; k++) if (!(lo(k) < hi(k))) throw new RangeError(`the workspace boxes do not overlap along ${AXES[k]}`);
  return { min: [lo(0), lo(1), lo(2)], max: [hi(0), hi(1), hi(2)] };
}
