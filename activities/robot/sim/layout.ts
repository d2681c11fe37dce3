/**
 * Seeded scene layout: objects placed at random on the table without overlapping, inside the arm's
 * workspace and the main camera's view, and the arm's random start pose.
 */
import type { Rng } from './rng';
import { OBJECT_SPECS, PROP_KINDS, type EndEffector, type ObjectKind, type ObjectPlacement } from './world';

/** Where object centers may be placed (meters); inside the arm's workspace and the camera view. */
export const SCENE_AREA = { x: [0.18, 0.42], y: [-0.17, 0.17] } as const;
/** Clearance circles must stay within this box (the table seen by the main camera). */
const CLEARANCE_AREA = { x: [0.12, 0.49], y: [-0.24, 0.24] } as const;

/** A clearance circle in the table plane: x, y, radius (meters). */
export type Circle = readonly [number, number, number];

export function clearanceCircles(p: ObjectPlacement): Circle[] {
  const c = Math.cos(p.yaw ?? 0);
  const s = Math.sin(p.yaw ?? 0);
  return OBJECT_SPECS[p.kind].clearance.map(([u, v, r]) => [p.x + c * u - s * v, p.y + s * u + c * v, r] as const);
}

function fits(circles: readonly Circle[], placed: readonly Circle[]): boolean {
  for (const [x, y, r] of circles) {
    if (x - r < CLEARANCE_AREA.x[0] || x + r > CLEARANCE_AREA.x[1] || y - r < CLEARANCE_AREA.y[0] || y + r > CLEARANCE_AREA.y[1]) return false;
    for (const [px, py, pr] of placed) if (Math.hypot(x - px, y - py) < r + pr + 0.01) return false;
  }
  return true;
}

/** Claims the placement's clearance in `placed` when it fits there (and returns whether it did). */
export function claimIfFits(p: ObjectPlacement, placed: Circle[]): boolean {
  const circles = clearanceCircles(p);
  if (!fits(circles, placed)) return false;
  placed.push(...circles);
  return true;
}

/**
 * A random placement of `kind` that fits among `placed` (and that `allowed` accepts), claimed;
 * undefined after 200 tries.
 */
export function tryPlace(kind: ObjectKind, rng: Rng, placed: Circle[], allowed: (p: ObjectPlacement) => boolean = () => true): ObjectPlacement | undefined {
  for (let attempt = 0; attempt < 200; attempt++) {
    const p: ObjectPlacement = {
      kind,
      x: rng.uniform(SCENE_AREA.x[0], SCENE_AREA.x[1]),
      y: rng.uniform(SCENE_AREA.y[0], SCENE_AREA.y[1]),
      yaw: kind.endsWith('_block') ? rng.uniform(-0.4, 0.4) : rng.uniform(-Math.PI, Math.PI),
    };
    if (allowed(p) && claimIfFits(p, placed)) return p;
  }
  return undefined;
}

/** Lays out the required objects (largest first) and up to `distractors` other props without overlap. */
export function sampleLayout(required: readonly ObjectKind[], rng: Rng, distractors: number): ObjectPlacement[] {
  const size = (k: ObjectKind): number => Math.max(...OBJECT_SPECS[k].clearance.map((c) => c[2]));
  const bySize = [...required].sort((a, b) => size(b) - size(a));
  for (let attempt = 0; attempt < 50; attempt++) {
    const placed: Circle[] = [];
    const out: ObjectPlacement[] = [];
    let ok = true;
    for (const kind of bySize) {
      const p = tryPlace(kind, rng, placed);
      if (!p) {
        ok = false;
        break;
      }
      out.push(p);
    }
    if (!ok) continue;
    const others = rng.shuffle(PROP_KINDS.filter((k) => !required.includes(k)));
    for (const kind of others.slice(0, distractors)) {
      const p = tryPlace(kind, rng, placed);
      if (p) out.push(p);
    }
    return out;
  }
  throw new Error(`could not lay out ${required.join(', ')} without overlap`);
}

/** The arm's start: above the middle of the table, gripper open, a little off level. */
export function sampleEe(rng: Rng): EndEffector {
  return {
    pos: [rng.uniform(0.24, 0.31), rng.uniform(-0.04, 0.04), rng.uniform(0.13, 0.18)],
    rpy: [rng.normal(0, 0.02), rng.normal(0, 0.02), rng.normal(0, 0.03)],
    gripper: 1,
  };
}
