/**
 * A scripted "teleoperator": waypoints (above the object, descend, close, lift, carry, lower, open,
 * retreat) followed with a speed-limited proportional controller plus hand tremor, slow drift and the
 * odd pause, so trajectories look like Bridge teleoperation rather than straight lines: ~1 cm steps,
 * gripper commands near 0/1 with in-between values while it moves, and the motion dims of each action
 * equal to state[t+1] - state[t] (the demonstrator pre-clips what the arm would clip).
 */
import type { Action7, State7 } from '../../../data-schemas/d-rob';
import type { Rng } from './rng';
import { groundSpec, type GroundedStep, type Task, type TaskOutcome, type TaskSpec } from './tasks';
import { clipAction, getObject, graspPoint, OBJECT_SPECS, state7, step, WORKSPACE, type Vec3, type World } from './world';

export interface DemoStep {
  /** The world the step starts from (its observation). */
  readonly world: World;
  /** state7(world): the Bridge state before the action. */
  readonly state: State7;
  readonly action: Action7;
}

export interface Demonstration {
  readonly steps: readonly DemoStep[];
  /** The world after the last action. */
  readonly final: World;
  readonly outcome: TaskOutcome;
}

export interface DemonstratorOptions {
  /** Hard cap on the episode length (steps); by default 160, more for long tasks (see `defaultMaxSteps`). */
  maxSteps?: number;
}

/** 160 steps (32 s at 5 Hz), or ~100 per pick-and-place and ~60 per pick-up when that is more. */
export function defaultMaxSteps(spec: TaskSpec): number {
  return Math.max(160, spec.steps.reduce((n, s) => n + (s.kind === 'pick_place' ? 100 : 60), 0));
}

/** Per-step motion limit of the operator, per axis (meters): Bridge's typical step is ~1 cm. */
export const OPERATOR_MAX_STEP = 0.02;

interface Operator {
  speed: number;
  gain: number;
  tremor: number;
  pauseRate: number;
}

type Phase =
  | { type: 'move'; label: string; target: (w: World) => Vec3; tol: number; speed: number }
  | { type: 'gripper'; to: 'open' | 'close'; steps: number }
  | { type: 'idle'; steps: number };

const clampZ = (z: number): number => Math.min(WORKSPACE.z[1] - 0.01, Math.max(WORKSPACE.z[0] + 0.002, z));

function graspPhases(object: string, rng: Rng): Phase[] {
  const aim: Vec3 = [rng.normal(0, 0.004), rng.normal(0, 0.004), rng.normal(0, 0.003)];
  const hover = rng.uniform(0.05, 0.09);
  const at = (w: World): Vec3 => {
    const g = graspPoint(getObject(w, object));
    return [g[0] + aim[0], g[1] + aim[1], clampZ(g[2] + aim[2])];
  };
  return [
    { type: 'move', label: 'above', target: (w) => [at(w)[0], at(w)[1], at(w)[2] + hover], tol: 0.012, speed: 1 },
    { type: 'move', label: 'descend', target: at, tol: 0.004, speed: 0.7 },
    { type: 'idle', steps: rng.chance(0.5) ? rng.int(1, 2) : 0 },
    { type: 'gripper', to: 'close', steps: rng.int(2, 4) },
    { type: 'idle', steps: rng.chance(0.4) ? 1 : 0 },
  ];
}

function phasesFor(s: GroundedStep, rng: Rng): Phase[] {
  if (s.kind === 'pick_up') {
    const liftZ = rng.uniform(0.12, 0.16);
    let liftFrom: Vec3 | undefined;
    return [
      ...graspPhases(s.object, rng),
      {
        type: 'move',
        label: 'lift',
        target: (w) => {
          liftFrom ??= w.ee.pos;
          return [liftFrom[0], liftFrom[1], liftZ];
        },
        tol: 0.01,
        speed: 0.8,
      },
      // Operators hold the object up for a moment before the episode is stopped.
      { type: 'idle', steps: rng.int(3, 6) },
    ];
  }
  const source = s.source;
  const target = s.target;
  const holds = OBJECT_SPECS[target].holds;
  const surface = holds?.surfaceZ ?? 0;
  // Aim the carried object's center near the receptacle's center, tighter on small ones (blocks).
  const fp = OBJECT_SPECS[target].footprint;
  const spread = Math.min(0.012, 0.12 * (fp.shape === 'circle' ? fp.r : Math.min(fp.hu, fp.hv)));
  const place: [number, number] = [rng.normal(0, spread), rng.normal(0, spread)];
  const carryZ = rng.uniform(0.1, 0.14);
  const dropGap = rng.uniform(0.008, 0.025);
  const retreat = rng.uniform(0.05, 0.09);
  // Lift and retreat go straight up from wherever they start; fixed when the phase begins.
  let liftFrom: Vec3 | undefined;
  let retreatFrom: Vec3 | undefined;
  const above = (w: World): [number, number] => {
    const t = getObject(w, target);
    const off = w.held?.offset ?? [0, 0, 0];
    return [t.pos[0] + place[0] - off[0], t.pos[1] + place[1] - off[1]];
  };
  const safeZ = (w: World): number => {
    // Carry the object high enough to clear the receptacle's rim.
    const off = w.held?.offset ?? [0, 0, 0];
    const t = getObject(w, target);
    return clampZ(Math.max(carryZ, t.pos[2] + OBJECT_SPECS[target].height + 0.03 - off[2]));
  };
  return [
    ...graspPhases(source, rng),
    {
      type: 'move',
      label: 'lift',
      target: (w) => {
        liftFrom ??= w.ee.pos;
        return [liftFrom[0], liftFrom[1], safeZ(w)];
      },
      tol: 0.015,
      speed: 0.9,
    },
    { type: 'move', label: 'carry', target: (w) => [...above(w), safeZ(w)], tol: 0.01, speed: 1 },
    {
      type: 'move',
      label: 'lower',
      target: (w) => {
        const t = getObject(w, target);
        const off = w.held?.offset ?? [0, 0, 0];
        return [...above(w), clampZ(t.pos[2] + surface + dropGap - off[2])];
      },
      tol: 0.005,
      speed: 0.6,
    },
    { type: 'idle', steps: rng.chance(0.5) ? 1 : 0 },
    { type: 'gripper', to: 'open', steps: rng.int(2, 3) },
    {
      type: 'move',
      label: 'retreat',
      target: (w) => (retreatFrom ??= [w.ee.pos[0], w.ee.pos[1], clampZ(w.ee.pos[2] + retreat)]),
      tol: 0.01,
      speed: 0.9,
    },
  ];
}

const openLevel = (rng: Rng): number => Math.min(1, 1 - Math.abs(rng.normal(0, 0.004)));
const closedLevel = (rng: Rng): number => Math.max(0, Math.abs(rng.normal(0, 0.006)));

/**
 * Runs the scripted demonstrator on `task` from `initial` (sampled from the task when omitted).
 * Deterministic for a given rng state.
 */
export function demonstrate(task: Task, rng: Rng, initial?: World, options: DemonstratorOptions = {}): Demonstration {
  const maxSteps = options.maxSteps ?? defaultMaxSteps(task.spec);
  let world = initial ?? task.sampleScene(rng);
  const op: Operator = {
    speed: rng.uniform(0.011, 0.016),
    gain: rng.uniform(0.35, 0.55),
    tremor: rng.uniform(0.7, 1.2),
    pauseRate: rng.uniform(0.01, 0.04),
  };
  const phases: Phase[] = [...groundSpec(task.spec, world).steps.flatMap((s) => phasesFor(s, rng)), { type: 'idle', steps: rng.int(1, 3) }];
  const steps: DemoStep[] = [];
  const history: World[] = [world];
  let drift: Vec3 = [0, 0, 0];
  let gripperOpen = world.ee.gripper >= 0.5;

  const emit = (motion: Vec3, gripper: number, rot?: Vec3): void => {
    const r = rot ?? [rng.normal(0, 0.002), rng.normal(0, 0.002), rng.normal(0, 0.003)];
    const raw: Action7 = [motion[0], motion[1], motion[2], r[0], r[1], r[2], gripper];
    const action = clipAction(world.ee, raw);
    steps.push({ world, state: state7(world), action });
    world = step(world, action);
    history.push(world);
  };
  const level = (): number => (gripperOpen ? openLevel(rng) : closedLevel(rng));
  const still = (): Vec3 => [rng.normal(0, 0.0006), rng.normal(0, 0.0006), rng.normal(0, 0.0006)];

  // Bridge episodes start with a resting, all-zero motion action.
  emit([0, 0, 0], world.ee.gripper >= 0.5 ? 1 : 0, [0, 0, 0]);

  for (const phase of phases) {
    if (steps.length >= maxSteps) break;
    if (phase.type === 'idle') {
      for (let i = 0; i < phase.steps && steps.length < maxSteps; i++) emit(still(), level());
    } else if (phase.type === 'gripper') {
      const from = gripperOpen ? 1 : 0;
      const to = phase.to === 'open' ? 1 : 0;
      for (let i = 1; i <= phase.steps && steps.length < maxSteps; i++) {
        const frac = Math.pow(i / phase.steps, 0.8);
        const g = i === phase.steps ? (to === 1 ? openLevel(rng) : closedLevel(rng)) : from + (to - from) * frac + rng.normal(0, 0.04);
        emit(still(), Math.min(1, Math.max(0, g)));
      }
      gripperOpen = to === 1;
    } else {
      for (let n = 0; n < 45 && steps.length < maxSteps; n++) {
        const goal = phase.target(world);
        const e: Vec3 = [goal[0] - world.ee.pos[0], goal[1] - world.ee.pos[1], goal[2] - world.ee.pos[2]];
        const dist = Math.hypot(...e);
        if (dist < phase.tol) break;
        if (rng.chance(op.pauseRate)) {
          for (let k = rng.int(1, 2); k > 0 && steps.length < maxSteps; k--) emit(still(), level());
          continue;
        }
        const speed = Math.max(Math.min(op.speed * phase.speed, op.gain * dist), Math.min(dist, 0.003));
        const sigma = op.tremor * (0.0006 + 0.1 * speed);
        drift = [0.7 * drift[0] + rng.normal(0, 0.0008), 0.7 * drift[1] + rng.normal(0, 0.0008), 0.7 * drift[2] + rng.normal(0, 0.0006)];
        // Drift fades near the goal: operators slow down and steady their hand when aligning.
        const steady = Math.min(1, dist / 0.03);
        const axis = (i: 0 | 1 | 2): number => {
          const v = (e[i] / dist) * speed + rng.normal(0, sigma) + steady * drift[i];
          return Math.max(-OPERATOR_MAX_STEP, Math.min(OPERATOR_MAX_STEP, v));
        };
        emit([axis(0), axis(1), axis(2)], level());
      }
    }
  }
  return { steps, final: world, outcome: task.evaluate(history) };
}
