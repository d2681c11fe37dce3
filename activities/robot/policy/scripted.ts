/**
 * The scripted policy (the embedded default): answers the VLA's three prompts
 * from the simulator's ground truth, as TEXT in exactly the trained format, so the same parser and
 * repair loop handle it and a real model. Configurable seeded noise on the actions, malformed
 * answers of realistic kinds at a given rate, and optionally a wrong subtask list, so every branch
 * of the episode loop is exercised.
 *
 * Subtasks are worded like the heuristic labeler's (activities/relabel/heuristic.ts: "Move to
 * carrot", "Grasp carrot", "Move to plate", "Release carrot", "Move away from plate"; "Lift
 * eggplant"), motion plans with its `describeMotion`. Each answer is computed from the current
 * world alone (no memory of earlier chunks), so a chunk that fell short or was perturbed is simply
 * continued from where the arm is.
 *
 * Actions: ~1.5 cm steps along straight waypoints (above the object, down to its grasp point; up to
 * a carry height, over the receptacle, down; straight up), at most `maxActionsPerChunk` per chunk,
 * gripper changes as their own zero-motion action, every action inside the 5 cm step limit and every
 * position inside the workspace box, even with noise.
 */
import type { ActionChunk } from '../../../data-schemas/d-lan';
import { DEFAULT_MAX_STEP_METERS, DEFAULT_WORKSPACE_BOUNDS } from '../../../data-schemas/station';
import { formatActionChunk, formatSubtaskList, PolicyStage } from '../../../data-schemas/prompts';
import { describeMotion } from '../../relabel/heuristic';
import { createRng, type Rng } from '../sim/rng';
import { groundSpec, type Task } from '../sim/tasks';
import { findObject, graspPoint, OBJECT_SPECS, restsOn, type ObjectKind, type Vec3, type World } from '../sim/world';

export interface ScriptedPolicyNoise {
  /** Standard deviation of the Gaussian added to each of dx, dy, dz of every action, meters. */
  actionStdMeters: number;
  /** Probability that an answer (any stage) is malformed. */
  formatErrorRate: number;
  /** Probability that a subtask list names the wrong object (well-formed but wrong). Default 0. */
  wrongSubtaskRate?: number;
}

export interface ScriptedPolicyOptions {
  seed: number;
  noise: ScriptedPolicyNoise;
  /** Translation per action, meters (Bridge-like, default 1.5 cm; at most 4.5 cm). */
  stepMeters?: number;
  /** Longest chunk (default 10 actions). */
  maxActionsPerChunk?: number;
}

/** What the simulator knows when the policy is asked. */
export interface ScriptedPolicyContext {
  /** The task of the scene (the station's `simTask()`). */
  task: Task;
  /** The current true world (the station's `simWorld()`). */
  world: World;
  /** Index of the current subtask in the true plan (`scriptedSubtasks(task, world)`, past its end: the last); ignored for the subtasks stage. */
  subtaskIndex: number;
}

export const MALFORMED_KINDS = {
  subtasks: ['prose', 'first_not_move_to'],
  motion_plan: ['empty', 'rambles_into_action'],
  action: ['truncated', 'missing_gripper', 'prose', 'numbers_as_words'],
} as const satisfies Record<PolicyStage, readonly string[]>;
export type MalformedKind = (typeof MALFORMED_KINDS)[PolicyStage][number];

export interface ScriptedAnswer {
  text: string;
  /** The kind of format error deliberately made, or null for a well-formed answer. */
  malformed: MalformedKind | null;
}

export interface ScriptedPolicy {
  /** The answer text, exactly as a VLA would write it. */
  answer(stage: PolicyStage, context: ScriptedPolicyContext): string;
  /** The answer plus whether (and how) it was deliberately malformed. */
  respond(stage: PolicyStage, context: ScriptedPolicyContext): ScriptedAnswer;
}

// ---------------------------------------------------------------------------------------------
// The true plan

export type SubtaskGoal =
  | { kind: 'approach'; text: string; object: ObjectKind }
  | { kind: 'grasp'; text: string; object: ObjectKind }
  | { kind: 'carry'; text: string; object: ObjectKind; target: ObjectKind }
  | { kind: 'lift'; text: string; object: ObjectKind }
  | { kind: 'release'; text: string; object: ObjectKind; target?: ObjectKind }
  | { kind: 'retreat'; text: string; from: ObjectKind };

const nameOf = (k: ObjectKind): string => OBJECT_SPECS[k].names[0] ?? k;

/**
 * The subtasks of a task, in the heuristic labeler's wording: per step "Move to X", "Grasp X", then
 * "Move to Y" + "Release X" (pick and place) or "Lift X" (pick up); "Move away from Y" after a final
 * release. A pick-up followed by more steps releases the object first.
 *
 * A task that names its object by where it lies ("pick up the item above Ash Ketchum") needs the
 * `world` to find it, and its subtasks name the object found ("Move to carrot", ...); without a
 * world such a task throws.
 */
export function scriptedSubtasks(task: Task, world?: World): SubtaskGoal[] {
  const out: SubtaskGoal[] = [];
  const steps = groundSpec(task.spec, world).steps;
  steps.forEach((s, i) => {
    const last = i === steps.length - 1;
    const o = s.kind === 'pick_place' ? s.source : s.object;
    out.push({ kind: 'approach', text: `Move to ${nameOf(o)}`, object: o }, { kind: 'grasp', text: `Grasp ${nameOf(o)}`, object: o });
    if (s.kind === 'pick_place') {
      out.push(
        { kind: 'carry', text: `Move to ${nameOf(s.target)}`, object: o, target: s.target },
        { kind: 'release', text: `Release ${nameOf(o)}`, object: o, target: s.target },
      );
      if (last) out.push({ kind: 'retreat', text: `Move away from ${nameOf(s.target)}`, from: s.target });
    } else {
      out.push({ kind: 'lift', text: `Lift ${nameOf(o)}`, object: o });
      if (!last) out.push({ kind: 'release', text: `Release ${nameOf(o)}`, object: o });
    }
  });
  return out;
}

/** Geometry of the plan, meters. */
export const SCRIPTED_GEOMETRY = {
  /** Height above the grasp point the approach passes through before descending. */
  hover: 0.07,
  /** Lowest carry height of the fingertips. */
  carryZ: 0.12,
  /** Gap between a carried object's base and the receptacle's surface when released. */
  dropGap: 0.015,
  /** Fingertip height "Lift X" and "Move away" go up to. */
  liftZ: 0.14,
  retreatZ: 0.12,
  /** How close to a waypoint counts as there. */
  tolerance: 0.005,
} as const;

const B = DEFAULT_WORKSPACE_BOUNDS;
/** Targets stay this far inside the workspace box. */
const MARGIN = 0.002;
const clampAxis = (v: number, k: 0 | 1 | 2): number => Math.min(B.max[k] - MARGIN, Math.max(B.min[k] + MARGIN, v));
const inBox = (p: readonly number[]): Vec3 => [clampAxis(p[0] ?? 0, 0), clampAxis(p[1] ?? 0, 1), clampAxis(p[2] ?? 0, 2)];
const dist = (a: Vec3, b: Vec3): number => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
const distXy = (a: Vec3, b: Vec3): number => Math.hypot(a[0] - b[0], a[1] - b[1]);
const isOpen = (w: World): boolean => w.ee.gripper >= 0.5;

function objectOrThrow(world: World, kind: ObjectKind): NonNullable<ReturnType<typeof findObject>> {
  const o = findObject(world, kind);
  if (!o) throw new Error(`no ${nameOf(kind)} in the scene`);
  return o;
}

/** Where the fingertips go to release the held object over `target`. */
function placePoint(world: World, target: ObjectKind): { xy: [number, number]; lowZ: number; safeZ: number } {
  const t = objectOrThrow(world, target);
  const off = world.held?.offset ?? [0, 0, 0];
  const surface = OBJECT_SPECS[target].holds?.surfaceZ ?? OBJECT_SPECS[target].height;
  const g = SCRIPTED_GEOMETRY;
  return {
    xy: [t.pos[0] - off[0], t.pos[1] - off[1]],
    lowZ: clampAxis(t.pos[2] + surface + g.dropGap - off[2], 2),
    safeZ: clampAxis(Math.max(g.carryZ, t.pos[2] + OBJECT_SPECS[target].height + 0.03 - off[2]), 2),
  };
}

/** Straight-line waypoints to `to` passing at height `viaZ`: up first when below it, over, then down. */
function overAndDown(from: Vec3, to: Vec3, viaZ: number): Vec3[] {
  if (distXy(from, to) <= SCRIPTED_GEOMETRY.tolerance) return [to];
  const out: Vec3[] = [];
  if (from[2] < viaZ - SCRIPTED_GEOMETRY.tolerance) out.push([from[0], from[1], viaZ]);
  out.push([to[0], to[1], viaZ], to);
  return out;
}

/** The remaining waypoints of a moving subtask from the current world (empty for gripper subtasks). */
export function subtaskWaypoints(goal: SubtaskGoal, world: World): Vec3[] {
  const ee = world.ee.pos;
  const g = SCRIPTED_GEOMETRY;
  switch (goal.kind) {
    case 'approach': {
      const p = inBox(graspPoint(objectOrThrow(world, goal.object)));
      return overAndDown(ee, p, clampAxis(p[2] + g.hover, 2)).map(inBox);
    }
    case 'carry': {
      const p = placePoint(world, goal.target);
      return overAndDown(ee, [p.xy[0], p.xy[1], p.lowZ], p.safeZ).map(inBox);
    }
    case 'lift':
      return [inBox([ee[0], ee[1], Math.max(ee[2], g.liftZ)])];
    case 'retreat':
      return [inBox([ee[0], ee[1], Math.max(ee[2], g.retreatZ)])];
    default:
      return [];
  }
}

/**
 * Ground truth: whether the subtask is done in `world` (the arm at the subtask's goal with the
 * right gripper state, the object held or released as the subtask says).
 */
export function subtaskReached(goal: SubtaskGoal, world: World): boolean {
  const tol = SCRIPTED_GEOMETRY.tolerance;
  const ee = world.ee.pos;
  switch (goal.kind) {
    case 'approach': {
      const p = inBox(graspPoint(objectOrThrow(world, goal.object)));
      return world.held === null && isOpen(world) && dist(ee, p) <= tol;
    }
    case 'grasp':
      return world.held?.id === goal.object;
    case 'carry': {
      if (world.held?.id !== goal.object) return false;
      const p = placePoint(world, goal.target);
      return dist(ee, [p.xy[0], p.xy[1], p.lowZ]) <= tol;
    }
    case 'lift':
      return world.held?.id === goal.object && ee[2] >= SCRIPTED_GEOMETRY.liftZ - tol;
    case 'release':
      return world.held === null && isOpen(world) && (goal.target === undefined || restsOn(world, goal.object, goal.target));
    case 'retreat':
      return world.held === null && isOpen(world) && ee[2] >= SCRIPTED_GEOMETRY.retreatZ - tol;
  }
}

/** The gripper command (1 open, 0 closed) a subtask moves with, or ends with. */
function gripperFor(goal: SubtaskGoal): 0 | 1 {
  return goal.kind === 'carry' || goal.kind === 'lift' || goal.kind === 'grasp' ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Chunks and plans

const GRIPPER_FIRST = new Set<SubtaskGoal['kind']>(['approach', 'carry', 'lift', 'retreat']);

interface PlannedChunk {
  /** Intended actions before noise, full precision. */
  actions: [number, number, number, 0 | 1][];
  /** Displacement of the remaining path (for the motion plan). */
  displacement: Vec3;
  gripperFrom: 0 | 1;
  gripperTo: 0 | 1;
}

function planChunk(goal: SubtaskGoal, world: World, stepMeters: number, maxActions: number): PlannedChunk {
  const from: 0 | 1 = isOpen(world) ? 1 : 0;
  const g = gripperFor(goal);
  const actions: PlannedChunk['actions'] = [];
  const ee = world.ee.pos;
  if (goal.kind === 'grasp') {
    // A closed, empty gripper (a missed grasp) reopens before closing again.
    if (world.held === null && from === 0) actions.push([0, 0, 0, 1]);
    actions.push([0, 0, 0, 0]);
    return { actions, displacement: [0, 0, 0], gripperFrom: from, gripperTo: 0 };
  }
  if (goal.kind === 'release') {
    actions.push([0, 0, 0, 1]);
    return { actions, displacement: [0, 0, 0], gripperFrom: from, gripperTo: 1 };
  }
  if (GRIPPER_FIRST.has(goal.kind) && from !== g) actions.push([0, 0, 0, g]);
  const waypoints = subtaskWaypoints(goal, world);
  let p: Vec3 = ee;
  for (const w of waypoints) {
    const len = dist(p, w);
    if (len < 1e-4) continue;
    const n = Math.ceil(len / stepMeters - 1e-9);
    const d: Vec3 = [(w[0] - p[0]) / n, (w[1] - p[1]) / n, (w[2] - p[2]) / n];
    for (let k = 0; k < n && actions.length < maxActions; k++) actions.push([d[0], d[1], d[2], g]);
    p = w;
    if (actions.length >= maxActions) break;
  }
  const end = waypoints[waypoints.length - 1] ?? ee;
  // Already there: hold position (a well-formed chunk needs at least one action).
  if (actions.length === 0) actions.push([0, 0, 0, g]);
  return { actions, displacement: [end[0] - ee[0], end[1] - ee[1], end[2] - ee[2]], gripperFrom: from, gripperTo: g };
}

/** Largest step the noisy chunk may take (under the 5 cm limit, with room for millimetre rounding). */
const MAX_NOISY_STEP = DEFAULT_MAX_STEP_METERS - 0.003;
const round3 = (v: number): number => Math.round(v * 1000) / 1000;

/**
 * Noise added, then each step rounded to the millimetre against the running position (so rounding
 * errors do not accumulate), kept under the step limit and inside the workspace box.
 */
function realise(chunk: PlannedChunk, start: Vec3, std: number, rng: Rng): ActionChunk {
  const at: [number, number, number] = [start[0], start[1], start[2]];
  let ideal: Vec3 = start;
  return chunk.actions.map(([dx, dy, dz, gr]) => {
    ideal = [ideal[0] + dx, ideal[1] + dy, ideal[2] + dz];
    const noisy = std > 0 ? [rng.normal(0, std), rng.normal(0, std), rng.normal(0, std)] : [0, 0, 0];
    const want = inBox([ideal[0] + (noisy[0] ?? 0), ideal[1] + (noisy[1] ?? 0), ideal[2] + (noisy[2] ?? 0)]);
    let d = [round3(want[0] - at[0]), round3(want[1] - at[1]), round3(want[2] - at[2])];
    const norm = Math.hypot(d[0] ?? 0, d[1] ?? 0, d[2] ?? 0);
    if (norm > MAX_NOISY_STEP) d = d.map((v) => round3((v * MAX_NOISY_STEP) / norm));
    // Stay inside the box after rounding (positions are within MARGIN of it before).
    d = d.map((v, k) => {
      const axis = k as 0 | 1 | 2;
      const next = (at[axis] ?? 0) + v;
      return next < B.min[axis] || next > B.max[axis] ? round3(clampAxis(next, axis) - (at[axis] ?? 0)) : v;
    });
    at[0] += d[0] ?? 0;
    at[1] += d[1] ?? 0;
    at[2] += d[2] ?? 0;
    return [d[0] ?? 0, d[1] ?? 0, d[2] ?? 0, gr];
  });
}

// ---------------------------------------------------------------------------------------------
// Malformed answers

const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const inWords = (v: number): string =>
  `${v < 0 ? 'minus ' : ''}${Math.abs(v)
    .toFixed(3)
    .split('')
    .map((c) => (c === '.' ? 'point' : (DIGITS[Number(c)] ?? c)))
    .join(' ')}`;

function malform(stage: PolicyStage, kind: MalformedKind, good: string, chunk: ActionChunk | undefined, rng: Rng): string {
  switch (kind) {
    case 'prose':
      return stage === PolicyStage.subtasks
        ? `First the robot should ${good.split('\n')[0]?.replace(/^1\.\s*/, '').toLowerCase() ?? 'move'}, and then it should finish the task.`
        : 'The gripper should move a little toward the target and then keep going until it is there.';
    case 'first_not_move_to':
      return formatSubtaskList(good.split('\n').slice(1).map((l) => l.replace(/^\d+\.\s*/, '')));
    case 'empty':
      return '';
    case 'rambles_into_action':
      return `${good}\n\n${formatActionChunk(chunk ?? [[0, 0, 0, 1]])}`;
    case 'truncated': {
      const cut = good.lastIndexOf('[');
      // Cut somewhere inside the list, never after its closing "]]".
      return good.slice(0, Math.max(2, rng.int(2, Math.max(2, cut + 3))));
    }
    case 'missing_gripper': {
      const c = chunk ?? [[0, 0, 0, 1]];
      const bad = rng.int(0, c.length - 1);
      return `[${c.map((a, i) => (i === bad ? formatActionChunk([a]).slice(1, -1).replace(/, [\d.]+\]$/, ']') : formatActionChunk([a]).slice(1, -1))).join(', ')}]`;
    }
    case 'numbers_as_words': {
      const c = chunk ?? [[0, 0, 0, 1]];
      return `[${c.map(([dx, dy, dz, gr]) => `[${inWords(dx)}, ${inWords(dy)}, ${inWords(dz)}, ${gr >= 0.5 ? 'one' : 'zero'}]`).join(', ')}]`;
    }
  }
}

// ---------------------------------------------------------------------------------------------

export function createScriptedPolicy(options: ScriptedPolicyOptions): ScriptedPolicy {
  const { seed, noise } = options;
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  const rate = (name: string, v: number | undefined): number => {
    const x = v ?? 0;
    if (!(x >= 0 && x <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${x}`);
    return x;
  };
  const formatErrorRate = rate('formatErrorRate', noise.formatErrorRate);
  const wrongSubtaskRate = rate('wrongSubtaskRate', noise.wrongSubtaskRate);
  if (!(noise.actionStdMeters >= 0 && noise.actionStdMeters <= 0.05)) throw new RangeError(`actionStdMeters must be in [0, 0.05], got ${noise.actionStdMeters}`);
  const stepMeters = options.stepMeters ?? 0.015;
  if (!(stepMeters > 0 && stepMeters <= 0.045)) throw new RangeError(`stepMeters must be in (0, 0.045], got ${stepMeters}`);
  const maxActions = options.maxActionsPerChunk ?? 10;
  if (!Number.isInteger(maxActions) || maxActions < 1 || maxActions > 256) throw new RangeError(`maxActionsPerChunk must be an integer in [1, 256], got ${maxActions}`);
  const rng = createRng(`scripted-policy|${seed}`);

  const goalAt = (ctx: ScriptedPolicyContext): SubtaskGoal => {
    const plan = scriptedSubtasks(ctx.task, ctx.world);
    const i = ctx.subtaskIndex;
    if (!Number.isInteger(i) || i < 0) throw new RangeError(`subtaskIndex must be a non-negative integer, got ${i}`);
    // Past the end (a longer, wrong subtask list): keep to the last true subtask.
    return plan[Math.min(i, plan.length - 1)] as SubtaskGoal;
  };

  const subtaskTexts = (ctx: ScriptedPolicyContext): string[] => {
    const texts = scriptedSubtasks(ctx.task, ctx.world).map((s) => s.text);
    if (wrongSubtaskRate > 0 && rng.chance(wrongSubtaskRate)) {
      // The classic confusion: a distractor in the scene named instead of the task's first object.
      const steps = groundSpec(ctx.task.spec, ctx.world).steps;
      const wanted = steps[0];
      const right = wanted ? nameOf(wanted.kind === 'pick_place' ? wanted.source : wanted.object) : undefined;
      const taskObjects = new Set(steps.flatMap((s) => (s.kind === 'pick_place' ? [s.source, s.target] : [s.object])));
      const others = ctx.world.objects.filter((o) => !taskObjects.has(o.kind) && o.kind !== 'picture_card');
      const wrong = others.length > 0 ? nameOf(rng.pick(others).kind) : undefined;
      if (right && wrong) return texts.map((t) => t.replace(new RegExp(`\\b${right}$`), wrong));
      return texts.filter((_, i) => i !== 1);
    }
    return texts;
  };

  const respond = (stage: PolicyStage, ctx: ScriptedPolicyContext): ScriptedAnswer => {
    let good: string;
    let chunk: ActionChunk | undefined;
    if (stage === PolicyStage.subtasks) {
      good = formatSubtaskList(subtaskTexts(ctx));
    } else {
      const planned = planChunk(goalAt(ctx), ctx.world, stepMeters, maxActions);
      chunk = realise(planned, ctx.world.ee.pos, noise.actionStdMeters, rng);
      good =
        stage === PolicyStage.motionPlan
          ? describeMotion(planned.displacement, { from: planned.gripperFrom, to: planned.gripperTo })
          : formatActionChunk(chunk);
    }
    if (formatErrorRate > 0 && rng.chance(formatErrorRate)) {
      const kind = rng.pick<MalformedKind>(MALFORMED_KINDS[stage]);
      return { text: malform(stage, kind, good, chunk, rng), malformed: kind };
    }
    return { text: good, malformed: null };
  };

  return { respond, answer: (stage, ctx) => respond(stage, ctx).text };
}
