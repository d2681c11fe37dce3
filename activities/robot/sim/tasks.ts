/**
 * Instructions the simulator understands: a small grammar over the scene's objects
 * ("put the carrot on the plate", "pick up the eggplant", "... then lift the fish"), each turned into
 * a Task with a seeded scene sampler and success / partial-credit checks in the SimplerEnv style
 * (DOMAIN.md "Robot evaluation": success is "source on target" at the final step, partial credit for
 * grasping the source at any step).
 */
import type { Rng } from './rng';
import {
  createWorld,
  findObject,
  graspPoint,
  isGraspable,
  OBJECT_KINDS,
  OBJECT_SPECS,
  restsOn,
  type EndEffector,
  type ObjectKind,
  type ObjectPlacement,
  type World,
} from './world';

export type TaskStep =
  | { readonly kind: 'pick_place'; readonly source: ObjectKind; readonly target: ObjectKind; readonly stack: boolean }
  | { readonly kind: 'pick_up'; readonly object: ObjectKind };

export interface TaskSpec {
  readonly steps: readonly TaskStep[];
}

export interface Milestone {
  readonly name: string;
  readonly achieved: boolean;
}

export interface TaskOutcome {
  /** Every step's goal reached in order, and still true at the final step. */
  readonly success: boolean;
  readonly milestones: readonly Milestone[];
  /** Milestones achieved, as partial credit. */
  readonly score: number;
  readonly maxScore: number;
}

export interface Task {
  readonly spec: TaskSpec;
  /** Canonical wording, e.g. "put the carrot on the plate". */
  readonly text: string;
  /** Canonical wording as an id segment, e.g. "put-carrot-on-plate". */
  readonly slug: string;
  /** Objects the task needs in the scene. */
  readonly objects: readonly ObjectKind[];
  /** A random (seeded) non-overlapping scene with the task's objects plus distractors. */
  sampleScene(rng: Rng): World;
  /** One of several wordings of the instruction; `parseTask` maps each back to this task. */
  phrase(rng: Rng): string;
  /** Success and partial credit over the worlds of an episode, the initial one first. */
  evaluate(history: readonly World[]): TaskOutcome;
}

/** The tasks the demonstrator is known to do well (DOMAIN.md evaluation tasks and SimplerEnv's WidowX suite). */
export const SUPPORTED_TASKS = [
  'put the carrot on the plate',
  'pick up the eggplant',
  'put the eggplant in the pan then lift the fish',
  'put the spoon on the towel',
  'stack the green block on the yellow block',
  'put the eggplant in the basket',
] as const;

export class UnknownTaskError extends Error {
  override name = 'UnknownTaskError';
  constructor(
    readonly text: string,
    reason: string,
  ) {
    super(
      `cannot simulate "${text}": ${reason}. Supported tasks: ${SUPPORTED_TASKS.map((t) => `"${t}"`).join(', ')} ` +
        `(or any "put/place <object> on/in <receptacle>", "stack <block> on <block>", "pick up <object>", joined with "then")`,
    );
  }
}

/** Lifted means the object's base is this far (meters) above where it started. */
export const LIFT_HEIGHT = 0.05;

// ---------------------------------------------------------------------------------------------
// Parsing

const NAME_TO_KIND = new Map<string, ObjectKind>(OBJECT_KINDS.flatMap((k) => [...OBJECT_SPECS[k].names, ...(OBJECT_SPECS[k].aliases ?? [])].map((n) => [n, k] as const)));

function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/[.,;:!?"'()]/g, ' ')
    .replace(/\b(the|a|an|please)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const PLACE = /^(?:put|place|move|set|drop|transfer) (.+?) (?:on top of|onto|on|into|inside|in|to) (.+)$/;
const STACK = /^stack (.+?) (?:on top of|onto|on) (.+)$/;
const PICK_UP = [/^(?:pick up|lift up|lift|grab|grasp|pick) (.+?)(?: up)?$/, /^pick (.+) up$/];

const isBlock = (k: ObjectKind): boolean => k === 'green_block' || k === 'yellow_block';

function objectKind(name: string, whole: string): ObjectKind {
  const kind = NAME_TO_KIND.get(name.trim());
  if (!kind) throw new UnknownTaskError(whole, `unknown object "${name.trim()}"`);
  return kind;
}

function parseClause(clause: string, whole: string): TaskStep {
  const stack = STACK.exec(clause);
  const place = stack ?? PLACE.exec(clause);
  if (place) {
    const source = objectKind(place[1] ?? '', whole);
    const target = objectKind(place[2] ?? '', whole);
    if (!isGraspable(source)) throw new UnknownTaskError(whole, `the ${OBJECT_SPECS[source].names[0]} cannot be grasped`);
    if (!OBJECT_SPECS[target].holds) throw new UnknownTaskError(whole, `nothing can be put on or in the ${OBJECT_SPECS[target].names[0]}`);
    if (source === target) throw new UnknownTaskError(whole, 'an object cannot be put on itself');
    return { kind: 'pick_place', source, target, stack: isBlock(source) && isBlock(target) };
  }
  for (const re of PICK_UP) {
    const m = re.exec(clause);
    if (!m) continue;
    const object = objectKind(m[1] ?? '', whole);
    if (!isGraspable(object)) throw new UnknownTaskError(whole, `the ${OBJECT_SPECS[object].names[0]} cannot be grasped`);
    return { kind: 'pick_up', object };
  }
  throw new UnknownTaskError(whole, `"${clause}" is not an instruction the simulator knows`);
}

/** Parses an instruction; throws UnknownTaskError (listing the supported tasks) when it cannot. */
export function parseTask(text: string): TaskSpec {
  const norm = normalize(text);
  if (!norm) throw new UnknownTaskError(text, 'empty instruction');
  const clauses = norm
    .split(/\b(?:and then|then|and after that|after that)\b/)
    .map((c) => c.replace(/\band$/, '').trim())
    .filter((c) => c.length > 0);
  if (clauses.length === 0) throw new UnknownTaskError(text, 'empty instruction');
  return { steps: clauses.map((c) => parseClause(c, text)) };
}

// ---------------------------------------------------------------------------------------------
// Wording

const nameOf = (k: ObjectKind): string => OBJECT_SPECS[k].names[0] ?? k;

function canonicalClause(step: TaskStep, first: boolean): string {
  if (step.kind === 'pick_up') return first ? `pick up the ${nameOf(step.object)}` : `lift the ${nameOf(step.object)}`;
  if (step.stack) return `stack the ${nameOf(step.source)} on the ${nameOf(step.target)}`;
  const prep = OBJECT_SPECS[step.target].holds?.relation === 'in' ? 'in' : 'on';
  return `put the ${nameOf(step.source)} ${prep} the ${nameOf(step.target)}`;
}

export function canonicalText(spec: TaskSpec): string {
  return spec.steps.map((s, i) => canonicalClause(s, i === 0)).join(' then ');
}

export function taskSlug(spec: TaskSpec): string {
  return canonicalText(spec)
    .replace(/\b(the|a|an)\b/g, ' ')
    .trim()
    .replace(/\s+/g, '-');
}

/** Mostly the canonical name, sometimes a synonym (the evaluation counts synonyms as hits). */
function sayName(k: ObjectKind, rng: Rng): string {
  const names = OBJECT_SPECS[k].names;
  return rng.chance(0.15) ? rng.pick(names) : (names[0] ?? k);
}

function phraseClause(step: TaskStep, first: boolean, rng: Rng): string {
  const the = rng.chance(0.8) ? 'the ' : '';
  if (step.kind === 'pick_up') {
    const o = the + sayName(step.object, rng);
    return rng.pick(first ? [`pick up ${o}`, `lift ${o}`, `pick ${o} up`, `grab ${o}`] : [`lift ${o}`, `pick up ${o}`]);
  }
  const s = the + sayName(step.source, rng);
  const t = the + sayName(step.target, rng);
  if (step.stack) return rng.pick([`stack ${s} on ${t}`, `stack ${s} on top of ${t}`, `put ${s} on top of ${t}`, `place ${s} on ${t}`]);
  if (OBJECT_SPECS[step.target].holds?.relation === 'in') return rng.pick([`put ${s} in ${t}`, `place ${s} in ${t}`, `put ${s} into ${t}`, `move ${s} into ${t}`]);
  return rng.pick([`put ${s} on ${t}`, `place ${s} on ${t}`, `put ${s} onto ${t}`, `move ${s} onto ${t}`]);
}

// ---------------------------------------------------------------------------------------------
// Scenes

/** Where object centers may be placed (meters); inside the arm's workspace and the camera view. */
export const SCENE_AREA = { x: [0.18, 0.42], y: [-0.17, 0.17] } as const;
/** Clearance circles must stay within this box (the table seen by the main camera). */
const CLEARANCE_AREA = { x: [0.12, 0.49], y: [-0.24, 0.24] } as const;

type Circle = readonly [number, number, number];

function clearanceCircles(p: ObjectPlacement): Circle[] {
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

function tryPlace(kind: ObjectKind, rng: Rng, placed: Circle[]): ObjectPlacement | undefined {
  for (let attempt = 0; attempt < 200; attempt++) {
    const p: ObjectPlacement = {
      kind,
      x: rng.uniform(SCENE_AREA.x[0], SCENE_AREA.x[1]),
      y: rng.uniform(SCENE_AREA.y[0], SCENE_AREA.y[1]),
      yaw: kind.endsWith('_block') ? rng.uniform(-0.4, 0.4) : rng.uniform(-Math.PI, Math.PI),
    };
    const circles = clearanceCircles(p);
    if (fits(circles, placed)) {
      placed.push(...circles);
      return p;
    }
  }
  return undefined;
}

/** Lays out the required objects (largest first) and up to `distractors` others without overlap. */
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
    const others = rng.shuffle(OBJECT_KINDS.filter((k) => !required.includes(k)));
    for (const kind of others.slice(0, distractors)) {
      const p = tryPlace(kind, rng, placed);
      if (p) out.push(p);
    }
    return out;
  }
  throw new Error(`could not lay out ${required.join(', ')} without overlap`);
}

function sampleEe(rng: Rng): EndEffector {
  return {
    pos: [rng.uniform(0.24, 0.31), rng.uniform(-0.04, 0.04), rng.uniform(0.13, 0.18)],
    rpy: [rng.normal(0, 0.02), rng.normal(0, 0.02), rng.normal(0, 0.03)],
    gripper: 1,
  };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function lifted(world: World, initial: World, kind: ObjectKind): boolean {
  const o = findObject(world, kind);
  const o0 = findObject(initial, kind);
  return o !== undefined && o0 !== undefined && world.held?.id === kind && o.pos[2] > o0.pos[2] + LIFT_HEIGHT;
}

function goal(step: TaskStep, world: World, initial: World): boolean {
  return step.kind === 'pick_place' ? restsOn(world, step.source, step.target) : lifted(world, initial, step.object);
}

const firstAt = (history: readonly World[], from: number, pred: (w: World) => boolean): number => {
  for (let t = from; t < history.length; t++) if (pred(history[t] as World)) return t;
  return -1;
};

export function evaluateSpec(spec: TaskSpec, history: readonly World[]): TaskOutcome {
  const initial = history[0];
  const final = history[history.length - 1];
  if (!initial || !final) throw new Error('evaluate needs at least one world');
  const milestones: Milestone[] = [];
  let from = 0;
  let inOrder = true;
  spec.steps.forEach((step, i) => {
    const object = step.kind === 'pick_place' ? step.source : step.object;
    if (i > 0) {
      milestones.push({
        name: `move toward the ${nameOf(object)}`,
        achieved:
          firstAt(history, from, (w) => {
            const o = findObject(w, object);
            return o !== undefined && Math.hypot(w.ee.pos[0] - graspPoint(o)[0], w.ee.pos[1] - graspPoint(o)[1]) < 0.05;
          }) >= 0,
      });
    }
    milestones.push({ name: `grasp the ${nameOf(object)}`, achieved: firstAt(history, from, (w) => w.held?.id === object) >= 0 });
    const reached = firstAt(history, from, (w) => goal(step, w, initial));
    milestones.push({
      name: step.kind === 'pick_up' ? `lift the ${nameOf(object)}` : `${nameOf(object)} ${OBJECT_SPECS[step.target].holds?.relation} the ${nameOf(step.target)}`,
      achieved: reached >= 0,
    });
    if (reached < 0) inOrder = false;
    else from = reached;
  });
  // A goal must still hold at the end unless a later step deliberately moves the same object.
  const holdsAtEnd = spec.steps.every((step, i) => {
    const object = step.kind === 'pick_place' ? step.source : step.object;
    const movedLater = spec.steps.slice(i + 1).some((s) => (s.kind === 'pick_place' ? s.source : s.object) === object);
    return movedLater || goal(step, final, initial);
  });
  const score = milestones.filter((m) => m.achieved).length;
  return { success: inOrder && holdsAtEnd, milestones, score, maxScore: milestones.length };
}

// ---------------------------------------------------------------------------------------------

export function taskFromSpec(spec: TaskSpec): Task {
  const objects = [...new Set(spec.steps.flatMap((s) => (s.kind === 'pick_place' ? [s.source, s.target] : [s.object])))];
  return {
    spec,
    text: canonicalText(spec),
    slug: taskSlug(spec),
    objects,
    sampleScene(rng) {
      const distractors = rng.int(objects.length >= 3 ? 0 : 1, objects.length >= 3 ? 2 : 3);
      const layout = sampleLayout(objects, rng, distractors);
      return createWorld(layout, sampleEe(rng));
    },
    phrase(rng) {
      const joiner = rng.pick([' then ', ', then ', ' and then ']);
      return spec.steps.map((s, i) => phraseClause(s, i === 0, rng)).join(joiner);
    },
    evaluate: (history) => evaluateSpec(spec, history),
  };
}

/** The Task for an instruction; throws UnknownTaskError when it cannot be parsed. */
export function resolveTask(text: string): Task {
  return taskFromSpec(parseTask(text));
}
