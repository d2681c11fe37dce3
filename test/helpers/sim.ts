import { step, type Vec3, type World } from '../../activities/robot/sim';

/** A 7-float simulator action: translation `d` and an absolute gripper command, no rotation. */
export const move = (d: Vec3, gripper: number): [number, number, number, number, number, number, number] => [d[0], d[1], d[2], 0, 0, 0, gripper];

/** Drives the fingertip to `to` in small straight steps, keeping the gripper command. */
export function goTo(world: World, to: Vec3, gripper: number): World {
  let w = world;
  for (let i = 0; i < 100; i++) {
    const e: Vec3 = [to[0] - w.ee.pos[0], to[1] - w.ee.pos[1], to[2] - w.ee.pos[2]];
    const d = Math.hypot(...e);
    if (d < 1e-9) break;
    const k = Math.min(1, 0.02 / d);
    w = step(w, move([e[0] * k, e[1] * k, e[2] * k], gripper));
  }
  return w;
}
