/**
 * Auxiliary labels of a D_lan record (docs/method.md, "D_lan"): subtask-completion tuples (o_i, o_j, l_i)
 * and per-step direction labels.
 */
import { subtaskRuns, type AuxiliaryLabels, type Direction } from '../../data-schemas/d-lan';
import type { CleanedTrajectory, SegmentLabel } from '../../data-schemas/relabel';

export type Vec3 = readonly [number, number, number];

/** Below this translation norm (metres per step, ~1 cm/s at 5 Hz) a step is labelled 'none'. */
export const DIRECTION_MIN_NORM = 0.002;

/** Bridge axes: +x forward, +y left, +z up. */
const AXIS_DIRECTIONS: readonly (readonly [Direction, Direction])[] = [
  ['forward', 'backward'],
  ['left', 'right'],
  ['up', 'down'],
];

/** The direction word of one signed axis (0 x, 1 y, 2 z). */
export function axisDirection(axis: 0 | 1 | 2, value: number): Exclude<Direction, 'none'> {
  const [pos, neg] = AXIS_DIRECTIONS[axis] as readonly [Direction, Direction];
  return (value >= 0 ? pos : neg) as Exclude<Direction, 'none'>;
}

/** Index of the largest |component|; ties go to the earlier axis (x, then y, then z). */
export function dominantAxis(d: Vec3): 0 | 1 | 2 {
  let best: 0 | 1 | 2 = 0;
  for (const axis of [1, 2] as const) if (Math.abs(d[axis]) > Math.abs(d[best])) best = axis;
  return best;
}

/** Dominant direction of a displacement, 'none' when its norm is below `minNorm`. */
export function dominantDirection(d: Vec3, minNorm = DIRECTION_MIN_NORM): Direction {
  if (!(Math.hypot(d[0], d[1], d[2]) >= minNorm)) return 'none';
  const axis = dominantAxis(d);
  return axisDirection(axis, d[axis]);
}

/**
 * Completion tuples and direction labels.
 *
 * Completion convention (indices are language step indices, i.e. positions in `segments`): a run of
 * consecutive steps with the same subtask is one attempt at that subtask (the heuristic splits a
 * subtask into several steps where the motion changes direction, as the verifier's retry loop would).
 * For each run [a, b] one tuple { fromStep: a, toStep: b + 1, subtask }: begun at key frame a,
 * complete at key frame b + 1, the first step of the next subtask. For the last run toStep is N =
 * segments.length, one past the last language step: it stands for the trajectory's final
 * observation (source step `steps - 1`), which is no step's key frame. With one step per subtask
 * this is (i, i + 1) for every i.
 *
 * Directions: one label per source step, the dominant axis of its cleaned translation
 * ('none' below DIRECTION_MIN_NORM).
 */
export function auxiliaryLabels(segments: readonly SegmentLabel[], cleaned: CleanedTrajectory): AuxiliaryLabels {
  const subtaskCompletion = subtaskRuns(segments.map((s) => s.subtask)).map(({ fromStep, toStep, subtask }) => ({ fromStep, toStep, subtask }));
  const directions = cleaned.translation.map((d, sourceStep) => ({ sourceStep, direction: dominantDirection(d) }));
  return { subtaskCompletion, directions };
}
