/**
 * The common Bridge cleaning (docs/method.md, "Cleaning Bridge actions", as in OpenVLA's `bridge_orig` and Octo), reduced to
 * what the pipeline uses: translation + gripper.
 */
import type { DRobTrajectory } from '../../data-schemas/d-rob';
import type { CleanedTrajectory } from '../../data-schemas/relabel';

/** Gripper commands above this are settled open. */
export const GRIPPER_OPEN_ABOVE = 0.95;
/** Gripper commands below this are settled closed. */
export const GRIPPER_CLOSED_BELOW = 0.05;

type Binary = 0 | 1;

function settled(v: number): Binary | undefined {
  if (v > GRIPPER_OPEN_ABOVE) return 1;
  if (v < GRIPPER_CLOSED_BELOW) return 0;
  return undefined;
}

/**
 * Binarises continuous gripper commands (1 open, 0 closed). A value in between belongs to a
 * transition under way, so it takes the next settled value; a trailing in-between value (an
 * episode cut mid-transition) takes the previous settled one; a sequence with no settled value at
 * all falls back to the nearer end (>= 0.5 open).
 */
export function binariseGripper(values: readonly number[]): Binary[] {
  const next: (Binary | undefined)[] = new Array<Binary | undefined>(values.length);
  let upcoming: Binary | undefined;
  for (let i = values.length - 1; i >= 0; i--) {
    next[i] = upcoming;
    upcoming = settled(values[i] as number) ?? upcoming;
  }
  const out: Binary[] = [];
  let previous: Binary | undefined;
  values.forEach((v, i) => {
    const s = settled(v);
    if (s !== undefined) previous = s;
    out.push(s ?? next[i] ?? previous ?? (v >= 0.5 ? 1 : 0));
  });
  return out;
}

/**
 * Cleans a D_rob trajectory: translation per step is state[t+1] - state[t] (the recorded deltas are
 * commands the arm may not have followed); the last step has no successor state, so it keeps its
 * recorded action's dx, dy, dz. The gripper is the recorded action's command, binarised.
 *
 * Unlike OpenVLA/Octo this keeps the all-zero first step instead of dropping it: D_lan steps refer to
 * source step indices (`sourceSteps`, key frames), so cleaned index t must stay frame t. A resting
 * first step only adds a near-zero translation, which aggregation absorbs.
 *
 * Not handled: Bridge data recorded before 2021-07-23 is shifted by one step; the trajectory does
 * not carry its recording date, so no shift is applied.
 */
export function cleanTrajectory(t: DRobTrajectory): CleanedTrajectory {
  const steps = t.steps.length;
  const translation: [number, number, number][] = t.steps.map((step, i) => {
    const following = t.steps[i + 1];
    if (!following) return [step.action[0], step.action[1], step.action[2]];
    return [following.state[0] - step.state[0], following.state[1] - step.state[1], following.state[2] - step.state[2]];
  });
  return { steps, translation, gripper: binariseGripper(t.steps.map((s) => s.action[6])) };
}
