/**
 * Post-processing of action chunks (docs/method.md, "Action chunk post-processing"): per-step movements of about
 * 1 cm are too small to be meaningful commands in text, so consecutive steps are re-aggregated into
 * commands of a few centimetres, conserving the total displacement, keeping every gripper transition
 * in place and never emitting a command longer than the absolute cap.
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

type Vec3 = [number, number, number];

/**
 * Why a command was emitted:
 * - `axis`: its movement along one axis reached `perAxisMeters`;
 * - `cap`: adding the next movement (`next`) would have taken its norm past `absoluteMeters`;
 * - `transition`: it is the (first part of the) step where the gripper changes, emitted alone;
 * - `before_transition`: the movement pending when the gripper changes, with the old gripper value;
 * - `end`: the remainder at the end of the chunk.
 */
export type EmitReason = 'axis' | 'cap' | 'transition' | 'before_transition' | 'end';

export interface AggregatedCommand {
  action: ChunkAction;
  reason: EmitReason;
  /** For `cap`: the movement that would have crossed the cap; it opens the next command. */
  next?: Vec3;
}

/**
 * A step's movement in equal parts, each with a norm of at most `cap`: one part unless the step
 * itself is longer than the cap. `0 +` turns -0 into 0, as accumulation does.
 */
function partsWithin(dx: number, dy: number, dz: number, cap: number): Vec3[] {
  let k = Math.max(1, Math.ceil(Math.hypot(dx, dy, dz) / cap));
  // Float rounding can leave ceil(norm / cap) equal parts a hair over the cap.
  while (Math.hypot(dx / k, dy / k, dz / k) > cap) k++;
  if (k === 1) return [[0 + dx, 0 + dy, 0 + dz]];
  return Array.from({ length: k }, (): Vec3 => [0 + dx / k, 0 + dy / k, 0 + dz / k]);
}

/**
 * Re-aggregates [dx, dy, dz, gripper] actions, saying why each command was emitted.
 *
 * The definition: per-step movements accumulate into the pending command. Before a movement is
 * added, the pending command is emitted if the sum would have a norm over `absoluteMeters` (the
 * cap: an upper bound, so every command passes a station whose per-step limit is at least the cap);
 * after it is added, the command is emitted once one axis reaches `perAxisMeters`. A single step
 * longer than the cap is split into equal parts no longer than the cap, which enter one by one.
 * Gripper transitions (any change of the gripper value; callers pass binarised values) always
 * flush: the pending movement is emitted with the old gripper value, then the transition step (its
 * first part, when it is split) is emitted alone with the new value, so the gripper changes exactly
 * where it did in the source. The remainder is flushed at the end, however small, so the sum of the
 * output equals the sum of the input up to float rounding.
 */
export function aggregateChunkExplained(actions: readonly ChunkAction[], options: ChunkAggregation, context: AggregateContext = {}): AggregatedCommand[] {
  const cap = options.absoluteMeters;
  const out: AggregatedCommand[] = [];
  let acc: Vec3 = [0, 0, 0];
  let pending = 0;
  let gripper = context.previousGripper;
  const emit = (g: number, reason: EmitReason, next?: Vec3): void => {
    out.push({ action: [acc[0], acc[1], acc[2], g], reason, ...(next && { next }) });
    acc = [0, 0, 0];
    pending = 0;
  };
  const add = (part: Vec3, g: number): void => {
    const sum: Vec3 = [acc[0] + part[0], acc[1] + part[1], acc[2] + part[2]];
    if (pending > 0 && Math.hypot(...sum) > cap) {
      emit(g, 'cap', part);
      acc = part;
    } else acc = sum;
    pending++;
    if (Math.abs(acc[0]) >= options.perAxisMeters || Math.abs(acc[1]) >= options.perAxisMeters || Math.abs(acc[2]) >= options.perAxisMeters) emit(g, 'axis');
  };
  for (const [dx, dy, dz, g] of actions) {
    const parts = partsWithin(dx, dy, dz, cap);
    if (gripper !== undefined && g !== gripper) {
      if (pending > 0) emit(gripper, 'before_transition');
      const [first, ...rest] = parts as [Vec3, ...Vec3[]];
      out.push({ action: [first[0], first[1], first[2], g], reason: 'transition' });
      gripper = g;
      for (const part of rest) add(part, g);
      continue;
    }
    gripper = g;
    for (const part of parts) add(part, g);
  }
  if (pending > 0 && gripper !== undefined) emit(gripper, 'end');
  return out;
}

/**
 * Re-aggregates [dx, dy, dz, gripper] actions into commands of meaningful size; the definition is
 * `aggregateChunkExplained`'s (docs/heuristic-labeler.md, "Action chunks").
 *
 * Properties (tested): displacement conserved; gripper sequence with repeats removed unchanged;
 * every command's norm at most `absoluteMeters`; every command reaches `perAxisMeters` on one axis
 * except where the cap, a transition or the end cut it.
 */
export function aggregateChunk(actions: readonly ChunkAction[], options: ChunkAggregation, context: AggregateContext = {}): ChunkAction[] {
  return aggregateChunkExplained(actions, options, context).map((c) => c.action);
}
