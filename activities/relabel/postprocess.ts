/**
 * Post-processing of action chunks (docs/method.md, "Action chunk post-processing"): per-step movements of about 1 cm are too small
 * to be meaningful commands in text, so consecutive steps are re-aggregated into commands of a few
 * centimetres, conserving the total displacement and keeping every gripper transition in place.
 */
import type { ChunkAction } from '../../data-schemas/d-lan';
import type { ChunkAggregation } from '../../data-schemas/relabel';

export interface AggregateContext {
  /**
   * Gripper value in force before the first action (the previous step's, when a chunk is cut out of
   * a longer trajectory). With it, a transition on the chunk's first action is isolated like any
   * other, so a "close, then lift" chunk does not close the gripper while already lifting.
   */
  previousGripper?: number;
}

function reached(acc: readonly [number, number, number], options: ChunkAggregation): boolean {
  return (
    Math.abs(acc[0]) >= options.perAxisMeters ||
    Math.abs(acc[1]) >= options.perAxisMeters ||
    Math.abs(acc[2]) >= options.perAxisMeters ||
    Math.hypot(acc[0], acc[1], acc[2]) >= options.absoluteMeters
  );
}

/**
 * Re-aggregates [dx, dy, dz, gripper] actions. Displacement accumulates until one axis reaches
 * `perAxisMeters` or the norm reaches `absoluteMeters`, then it is emitted as one command.
 *
 * Gripper transitions (any change of the gripper value; callers pass binarised values) always
 * flush: the pending movement is emitted with the old gripper value, then the transition step is
 * emitted alone with the new value, so the gripper changes exactly where it did in the source. The
 * remainder is flushed at the end, however small, so the sum of the output equals the sum of the
 * input up to float rounding.
 *
 * Properties (tested): displacement conserved; gripper sequence with repeats removed unchanged;
 * output no longer than input; every command reaches a threshold except the one before a
 * transition, the transition itself and the last; aggregating the output again returns it unchanged.
 */
export function aggregateChunk(actions: readonly ChunkAction[], options: ChunkAggregation, context: AggregateContext = {}): ChunkAction[] {
  const out: ChunkAction[] = [];
  let acc: [number, number, number] = [0, 0, 0];
  let pending = 0;
  let gripper = context.previousGripper;
  const emit = (g: number): void => {
    out.push([acc[0], acc[1], acc[2], g]);
    acc = [0, 0, 0];
    pending = 0;
  };
  for (const [dx, dy, dz, g] of actions) {
    if (gripper !== undefined && g !== gripper) {
      if (pending > 0) emit(gripper);
      // `0 +` turns -0 into 0, as accumulation does, so a second pass reproduces the output exactly.
      out.push([0 + dx, 0 + dy, 0 + dz, g]);
      gripper = g;
      continue;
    }
    gripper = g;
    acc = [acc[0] + dx, acc[1] + dy, acc[2] + dz];
    pending++;
    if (reached(acc, options)) emit(g);
  }
  if (pending > 0 && gripper !== undefined) emit(gripper);
  return out;
}
