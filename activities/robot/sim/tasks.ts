/**
 * Instructions the simulator understands: a small grammar over the scene's objects
 * ("put the carrot on the plate", "pick up the eggplant", "... then lift the fish"), each turned into
 * a Task with a seeded scene sampler and success / partial-credit checks in the SimplerEnv style
 * (docs/method.md, "The simulated anchor": success is "source on target" at the final step, partial credit for
 * grasping the source at any step). Also understood: "pick up <object>" in Spanish, Mandarin and
 * Hindi (languages.ts), and "pick up the item above <picture>", whose object is found in the scene
 * (above.ts).
 */
import { itemAbove, pictureLabel, PICTURE_LABELS, sampleItemAboveScene, type PictureLabel } from './above';
import { matchForeignPickUp } from './languages';
import { sampleEe, sampleLayout } from './layout';
import type { Rng } from './rng';
import { createWorld, findObject, graspPoint, isGraspable, OBJECT_KINDS, OBJECT_SPECS, restsOn, type ObjectKind, type World } from './world';

export type PickPlaceStep = { readonly kind: 'pick_place'; readonly source: ObjectKind; readonly target: ObjectKind; readonly stack: boolean };
export type PickUpStep = { readonly kind: 'pick_up'; readonly object: ObjectKind };
/** "Pick up the item above <label>": the object is whatever lies above that picture card in the scene. */
export type PickUpAboveStep = { readonly kind: 'pick_up_above'; readonly label: PictureLabel };
/** A step whose objects are named. */
export type GroundedStep = PickPlaceStep | PickUpStep;
export type TaskStep = GroundedStep | PickUpAboveStep;

export interface TaskSpec {
  readonly steps: readonly TaskStep[];
}

/** A spec whose objects are all named (see `groundSpec`). */
export interface GroundedSpec {
  readonly steps: readonly GroundedStep[];
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

/** The tasks the demonstrator is known to do well (the paper's evaluation tasks and SimplerEnv's WidowX suite, docs/method.md). */
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
        `(or any "put/place <object> on/in <receptacle>", "stack <block> on <block>", "pick up <object>", joined with "then"; ` +
        `"pick up the item above <picture>" with a picture of ${PICTURE_LABELS.join(', ')}; ` +
        `"pick up <object>" in Spanish, Mandarin or Hindi, e.g. "recoge la berenjena", "拿起茄子", "बैंगन उठाओ")`,
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

/** "item above ash ketchum", "object over the picture of pikachu" -> the card's label. */
const ABOVE_PHRASE = /^(?:item|object|thing|one) (?:above|over) (?:(?:picture|photo|card|image) of )?(.+)$/;

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
    const above = ABOVE_PHRASE.exec(m[1] ?? '');
    if (above) {
      const label = pictureLabel(above[1] ?? '');
      if (!label) throw new UnknownTaskError(whole, `no picture card shows "${above[1] ?? ''}" (cards show ${PICTURE_LABELS.join(', ')})`);
      return { kind: 'pick_up_above', label };
    }
    const object = objectKind(m[1] ?? '', whole);
    if (!isGraspable(object)) throw new UnknownTaskError(whole, `the ${OBJECT_SPECS[object].names[0]} cannot be grasped`);
    return { kind: 'pick_up', object };
  }
  throw new UnknownTaskError(whole, `"${clause}" is not an instruction the simulator knows`);
}

/** Parses an instruction; throws UnknownTaskError (listing the supported tasks) when it cannot. */
export function parseTask(text: string): TaskSpec {
  const foreign = matchForeignPickUp(text);
  if (foreign) {
    if (!foreign.kind) throw new UnknownTaskError(text, `unknown object "${foreign.object}"`);
    if (!isGraspable(foreign.kind)) throw new UnknownTaskError(text, `the ${nameOf(foreign.kind)} cannot be grasped`);
    return { steps: [{ kind: 'pick_up', object: foreign.kind }] };
  }
  const norm = normalize(text);
  if (!norm) throw new UnknownTaskError(text, 'empty instruction');
  const clauses = norm
    .split(/\b(?:and then|then|and after that|after that)\b/)
    .map((c) => c.replace(/\band$/, '').trim())
    .filter((c) => c.length > 0);
  if (clauses.length === 0) throw new UnknownTaskError(text, 'empty instruction');
  const steps = clauses.map((c) => parseClause(c, text));
  if (steps.length > 1 && steps.some((s) => s.kind === 'pick_up_above')) throw new UnknownTaskError(text, '"the item above <picture>" is a task on its own, not one step of several');
  return { steps };
}

// ---------------------------------------------------------------------------------------------
// Wording

const nameOf = (k: ObjectKind): string => OBJECT_SPECS[k].names[0] ?? k;

function canonicalClause(step: TaskStep, first: boolean): string {
  if (step.kind === 'pick_up_above') return `pick up the item above ${step.label}`;
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
    .toLowerCase()
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
  if (step.kind === 'pick_up_above') {
    const item = rng.pick(['item', 'object', 'thing']);
    const verb = rng.pick(['pick up', 'grab', 'lift']);
    return rng.chance(0.7) ? `${verb} the ${item} above ${step.label}` : `${verb} the ${item} above the picture of ${step.label}`;
  }
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
// Evaluation

function lifted(world: World, initial: World, kind: ObjectKind): boolean {
  const o = findObject(world, kind);
  const o0 = findObject(initial, kind);
  return o !== undefined && o0 !== undefined && world.held?.id === kind && o.pos[2] > o0.pos[2] + LIFT_HEIGHT;
}

function goal(step: GroundedStep, world: World, initial: World): boolean {
  return step.kind === 'pick_place' ? restsOn(world, step.source, step.target) : lifted(world, initial, step.object);
}

const firstAt = (history: readonly World[], from: number, pred: (w: World) => boolean): number => {
  for (let t = from; t < history.length; t++) if (pred(history[t] as World)) return t;
  return -1;
};

/** Success and partial credit of an episode; objects named by where they lie are found in its initial world. */
export function evaluateSpec(taskSpec: TaskSpec, history: readonly World[]): TaskOutcome {
  const initial = history[0];
  const final = history[history.length - 1];
  if (!initial || !final) throw new Error('evaluate needs at least one world');
  const spec = groundSpec(taskSpec, initial);
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

/** Whether every step names its objects (no "item above" to find in a scene). */
export function isGroundedSpec(spec: TaskSpec): spec is GroundedSpec {
  return spec.steps.every((s) => s.kind !== 'pick_up_above');
}

/**
 * The spec with every object named, as meant in `world`: "pick up the item above Ash Ketchum" is
 * "pick up the carrot" in a scene where the carrot lies above that card. A spec that names its
 * objects already is returned as it is (and needs no world); otherwise throws without a world or
 * when the scene has no such card or nothing above it.
 */
export function groundSpec(spec: TaskSpec, world?: World): GroundedSpec {
  if (isGroundedSpec(spec)) return spec;
  if (!world) throw new Error(`"${canonicalText(spec)}" names its object by where it lies: the scene is needed to know which`);
  return { steps: spec.steps.map((s): GroundedStep => (s.kind === 'pick_up_above' ? { kind: 'pick_up', object: itemAbove(world, s.label) } : s)) };
}

/** The objects a step needs in the scene (an "item above" step: the card; the item is the sampler's choice). */
function stepObjects(s: TaskStep): ObjectKind[] {
  if (s.kind === 'pick_place') return [s.source, s.target];
  return s.kind === 'pick_up' ? [s.object] : ['picture_card'];
}

export function taskFromSpec(spec: TaskSpec): Task {
  const objects = [...new Set(spec.steps.flatMap(stepObjects))];
  const above = spec.steps.find((s) => s.kind === 'pick_up_above');
  if (above && spec.steps.length > 1) throw new Error('"the item above <picture>" is a task on its own, not one step of several');
  return {
    spec,
    text: canonicalText(spec),
    slug: taskSlug(spec),
    objects,
    sampleScene(rng) {
      if (above) return sampleItemAboveScene(above.label, rng);
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
