/**
 * The heuristic labeler: deterministic, no model, no key. Segments a cleaned
 * trajectory at gripper transitions and changes of dominant motion direction, names the segments'
 * subtasks from the parsed instruction and the gripper state, and writes motion plans from each
 * segment's signed displacement with the Bridge axes. Rules and limits: docs/heuristic-labeler.md.
 */
import type { CleanedTrajectory, SegmentLabel } from '../../data-schemas/relabel';
import { axisDirection, dominantAxis, type Vec3 } from './auxiliary';

/** Tuning of the heuristic; changing any value changes labels, so bump HEURISTIC_LABELER_VERSION. */
export const HEURISTIC_PARAMS = {
  /** Steps each side of a step in the smoothing window of the direction signal (3-step window). */
  smoothingRadius: 1,
  /** Smoothed speed (m per step) below which a step counts as a pause, not a direction. */
  stillMetersPerStep: 0.002,
  /** Raw step norm (m) below which steps after a gripper transition still belong to the grasp or release. */
  holdMetersPerStep: 0.003,
  /** Motion segments shorter than this are merged into a neighbour (gripper actions are exempt). */
  minSegmentSteps: 3,
  /** The current direction is kept while its component is at least this share of the largest one. */
  hysteresis: 0.75,
  /** A close-then-open whose closed span moved less than this (m, net) is a failed grasp, retried. */
  regraspMaxCarryMeters: 0.03,
  /** Axes moving less than this (m) in a segment are not mentioned in its motion plan. */
  mentionMeters: 0.005,
  /**
   * Grades of secondary axes (lihzha/lap: slightly ~1.5 cm, moderately ~5 cm, a lot ~10 cm): below
   * this "slightly" ... Boundaries sit on half centimetres so the rounded "about N cm" never
   * contradicts the grade word.
   */
  slightlyBelowMeters: 0.025,
  /** ... below this "moderately" (~5 cm), from here "a lot" (~10 cm). */
  moderatelyBelowMeters: 0.075,
} as const;

// ---------------------------------------------------------------------------------------------
// Instructions

export type ParsedStep =
  | { kind: 'pick_place'; object: string; target: string; relation: string; from?: string; stack: boolean }
  | { kind: 'pick_up'; object: string; from?: string }
  | { kind: 'flip'; object: string; orientation?: string; location?: string }
  | { kind: 'turn'; object: string; goal?: string }
  | { kind: 'open' | 'close'; object: string };

export type ParsedInstruction = { kind: 'task'; steps: ParsedStep[] } | { kind: 'unknown'; text: string };

const VERBS = 'put|place|move|set|drop|transfer|bring|pick|lift|grab|grasp|take|remove|get|stack|flip|turn|rotate|twist|open|close|shut|switch';

/** Lower case, no punctuation, no articles or politeness. */
export function normalizeInstruction(text: string): string {
  return text
    .toLowerCase()
    .replace(/[.,;:!?"()]/g, ' ')
    .replace(/'s\b/g, '')
    .replace(/'/g, ' ')
    .replace(/\b(the|a|an|please|some)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const DIRECTION_WORDS = /^(left|right|front|back|forward|backward|backwards|center|centre|middle|side|up|down)$/;

const STACK = /^stack (.+?) (?:on top of|onto|on) (.+)$/;
const PLACE =
  /^(?:put|place|move|set|drop|transfer|bring) (.+?)(?: from (.+?))? (on top of|onto|on|into|in to|inside|in|to|next to|beside|near|at|under|behind|in front of) (.+)$/;
const TAKE_OUT = /^(?:take|remove|get|pick up|pick|lift) (.+?) (?:out of|from|off of|off) (.+)$/;
const PICK_UP = [/^(?:pick up|lift up|lift|pick|grab|grasp|take|raise) (.+?)(?: up)?$/, /^pick (.+) up$/];
const FLIP =
  /^(?:flip|turn over|tip over) (.+?)(?: (upright|over|upside down|right side up|on its side))?(?: (?:which|that) (?:is|are) (?:in|on|inside|at) (.+)| (?:in|on|inside|at) (.+))?$/;
const TURN_ON_OFF = /^(?:turn|switch) (on|off) (.+)$/;
const TURN = /^(?:turn|rotate|twist|switch) (.+?) ((?:vertical|vertically|horizontal|horizontally|upright|sideways|left|right|clockwise|counterclockwise|counter clockwise|anticlockwise|on|off|to|toward|towards)\b.*)$/;
const TURN_ONLY = /^(?:turn|rotate|twist) (.+)$/;
const OPEN_CLOSE = /^(open|close|shut) (.+)$/;

const PRONOUN = /^(it|them|one|that|this|object)$/;

function parseClause(clause: string, previousObject: string | undefined): ParsedStep | undefined {
  const obj = (s: string | undefined): string | undefined => {
    const v = (s ?? '').trim();
    if (!v) return undefined;
    if (PRONOUN.test(v)) return previousObject;
    return v;
  };
  const stack = STACK.exec(clause);
  if (stack) {
    const object = obj(stack[1]);
    const target = obj(stack[2]);
    return object && target ? { kind: 'pick_place', object, target, relation: 'on', stack: true } : undefined;
  }
  const flip = FLIP.exec(clause);
  if (flip) {
    const object = obj(flip[1]);
    if (!object) return undefined;
    const location = flip[3] ?? flip[4];
    return { kind: 'flip', object, ...(flip[2] && { orientation: flip[2] }), ...(location && { location }) };
  }
  const place = PLACE.exec(clause);
  if (place) {
    const object = obj(place[1]);
    const target = obj(place[4]);
    const relation = (place[3] ?? 'on').replace(/^in to$/, 'into');
    // "move the pot to the left" is a push or slide, not a placement on a named target.
    if (!object || !target || DIRECTION_WORDS.test(target)) return undefined;
    return { kind: 'pick_place', object, target, relation, ...(place[2] && { from: place[2] }), stack: false };
  }
  const takeOut = TAKE_OUT.exec(clause);
  if (takeOut) {
    const object = obj(takeOut[1]);
    return object && takeOut[2] ? { kind: 'pick_up', object, from: takeOut[2] } : undefined;
  }
  for (const re of PICK_UP) {
    const m = re.exec(clause);
    if (!m) continue;
    const object = obj(m[1]);
    return object ? { kind: 'pick_up', object } : undefined;
  }
  const onOff = TURN_ON_OFF.exec(clause);
  if (onOff) {
    const object = obj(onOff[2]);
    return object ? { kind: 'turn', object, goal: onOff[1] as string } : undefined;
  }
  const turn = TURN.exec(clause) ?? TURN_ONLY.exec(clause);
  if (turn) {
    const object = obj(turn[1]);
    return object ? { kind: 'turn', object, ...(turn[2] && { goal: turn[2].trim() }) } : undefined;
  }
  const oc = OPEN_CLOSE.exec(clause);
  if (oc) {
    const object = obj(oc[2]);
    return object ? { kind: oc[1] === 'open' ? 'open' : 'close', object } : undefined;
  }
  return undefined;
}

/**
 * Parses the instruction grammar Bridge and the simulator use: "put/place/move X on/in/into/onto Y"
 * (optionally "from A"), "stack X on Y", "pick up X" / "lift X", "take X out of Y", "flip X upright
 * [which is in Y]", "turn X <goal>", "open/close X", chained with "then" (or "and" before a verb).
 * Anything else is `{ kind: 'unknown', text }`: the labeler then uses generic subtasks.
 */
export function parseInstruction(text: string): ParsedInstruction {
  const norm = normalizeInstruction(text);
  const clauses = norm
    .replace(new RegExp(`\\band (?=(?:${VERBS})\\b)`, 'g'), 'then ')
    .split(/\b(?:and then|then|and after that|after that|and afterwards|afterwards)\b/)
    .map((c) => c.replace(/^and\b|\band$/g, '').trim())
    .filter((c) => c.length > 0);
  if (clauses.length === 0) return { kind: 'unknown', text };
  const steps: ParsedStep[] = [];
  let previous: string | undefined;
  for (const clause of clauses) {
    const step = parseClause(clause, previous);
    if (!step) return { kind: 'unknown', text };
    steps.push(step);
    previous = step.object;
  }
  return { kind: 'task', steps };
}

/** Subtask wording of one instruction step, by gripper phase. */
export interface PhaseSubtasks {
  /** Open gripper, moving toward what will be grasped. */
  approach: string;
  /** The closing of the gripper. */
  grasp: string;
  /** Closed gripper, moving. */
  carry: string;
  /** The opening of the gripper. */
  release: string;
  /** Open gripper, moving after the last release. */
  retreat: string;
}

export const GENERIC_SUBTASKS: PhaseSubtasks = {
  approach: 'Move to the target object',
  grasp: 'Grasp the object',
  carry: 'Move the object as instructed',
  release: 'Release the object',
  retreat: 'Move away',
};

function phaseSubtasks(step: ParsedStep): PhaseSubtasks {
  const o = step.object;
  const common = { approach: `Move to ${o}`, grasp: `Grasp ${o}`, release: `Release ${o}`, retreat: `Move away from ${o}` };
  switch (step.kind) {
    case 'pick_place':
      return { ...common, carry: `Move to ${step.target}`, retreat: `Move away from ${step.target}` };
    case 'pick_up':
      return { ...common, carry: step.from ? `Lift ${o} out of ${step.from}` : `Lift ${o}` };
    case 'flip':
      return { ...common, carry: `Flip ${o} ${step.orientation ?? 'over'}` };
    case 'turn':
      return { ...common, carry: step.goal ? `Turn ${o} ${step.goal}` : `Turn ${o}` };
    case 'open':
      return { ...common, carry: `Open ${o}` };
    case 'close':
      return { ...common, carry: `Close ${o}` };
  }
}

/** The subtask wordings per instruction step (one generic entry for unknown instructions). */
export function subtaskPlan(parsed: ParsedInstruction): PhaseSubtasks[] {
  return parsed.kind === 'unknown' ? [GENERIC_SUBTASKS] : parsed.steps.map(phaseSubtasks);
}

// ---------------------------------------------------------------------------------------------
// Motion plans

const cm = (m: number): number => Math.max(1, Math.round(Math.abs(m) * 100));

function graded(axis: 0 | 1 | 2, v: number): string {
  const dir = axisDirection(axis, v);
  const a = Math.abs(v);
  if (a < HEURISTIC_PARAMS.slightlyBelowMeters) return `slightly ${dir} (about ${cm(v)} cm)`;
  if (a < HEURISTIC_PARAMS.moderatelyBelowMeters) return `moderately ${dir} (about ${cm(v)} cm)`;
  return `${dir} a lot (about ${cm(v)} cm)`;
}

/** "move primarily forward (about 6 cm) and slightly left (about 1 cm)", undefined for no motion. */
export function describeDisplacement(d: Vec3): string | undefined {
  const axes = ([0, 1, 2] as const).filter((a) => Math.abs(d[a]) >= HEURISTIC_PARAMS.mentionMeters).sort((a, b) => Math.abs(d[b]) - Math.abs(d[a]));
  const [main, ...rest] = axes;
  if (main === undefined) return undefined;
  const head = `${axisDirection(main, d[main])} (about ${cm(d[main])} cm)`;
  if (rest.length === 0) return `move ${head}`;
  const [second, third] = rest.map((a) => graded(a, d[a]));
  return third === undefined ? `move primarily ${head} and ${second}` : `move primarily ${head}, ${second} and ${third}`;
}

/**
 * A motion plan for a segment with net displacement `d`: gripper `from` is the state before the
 * segment, `to` its state (the heuristic puts transitions only at segment starts).
 * e.g. "Move primarily forward (about 6 cm) and slightly left (about 1 cm), keeping the gripper open."
 */
export function describeMotion(d: Vec3, gripper: { from: 0 | 1; to: 0 | 1 }): string {
  const motion = describeDisplacement(d);
  if (gripper.from !== gripper.to) {
    const action = gripper.to === 0 ? 'Close the gripper' : 'Open the gripper';
    return motion ? `${action}, then ${motion}.` : `${action} and hold position.`;
  }
  const state = gripper.to === 1 ? 'open' : 'closed';
  return motion ? `${motion.charAt(0).toUpperCase()}${motion.slice(1)}, keeping the gripper ${state}.` : `Hold position with the gripper ${state}.`;
}

// ---------------------------------------------------------------------------------------------
// Segmentation

type Role = 'approach' | 'grasp' | 'carry' | 'release';

interface Segment {
  start: number;
  end: number;
  role: Role;
}

interface Span {
  start: number;
  end: number;
  gripper: 0 | 1;
}

type Label = ReturnType<typeof axisDirection> | 'still';

function sum(cleaned: CleanedTrajectory, start: number, end: number): [number, number, number] {
  const d: [number, number, number] = [0, 0, 0];
  for (let t = start; t < end; t++) {
    const v = cleaned.translation[t] as Vec3;
    d[0] += v[0];
    d[1] += v[1];
    d[2] += v[2];
  }
  return d;
}

function gripperSpans(cleaned: CleanedTrajectory): Span[] {
  const spans: Span[] = [];
  cleaned.gripper.forEach((g, t) => {
    const last = spans[spans.length - 1];
    if (last && last.gripper === g) last.end = t + 1;
    else spans.push({ start: t, end: t + 1, gripper: g });
  });
  return spans;
}

/** Direction label per step of [a, b): dominant axis of a centred moving average, with hysteresis. */
function directionLabels(cleaned: CleanedTrajectory, a: number, b: number): Label[] {
  const r = HEURISTIC_PARAMS.smoothingRadius;
  const labels: Label[] = [];
  let current: Label = 'still';
  for (let t = a; t < b; t++) {
    const lo = Math.max(a, t - r);
    const hi = Math.min(b, t + r + 1);
    const d = sum(cleaned, lo, hi).map((v) => v / (hi - lo)) as [number, number, number];
    if (Math.hypot(...d) < HEURISTIC_PARAMS.stillMetersPerStep) {
      labels.push('still');
      continue;
    }
    const axis = dominantAxis(d);
    const best = Math.abs(d[axis]);
    if (current !== 'still') {
      const k = (['forward', 'backward', 'left', 'right', 'up', 'down'] as const).indexOf(current);
      const held = Math.floor(k / 2) as 0 | 1 | 2;
      const along = k % 2 === 0 ? d[held] : -d[held];
      if (along >= HEURISTIC_PARAMS.hysteresis * best) {
        labels.push(current);
        continue;
      }
    }
    current = axisDirection(axis, d[axis]);
    labels.push(current);
  }
  return labels;
}

interface Run {
  label: Label;
  start: number;
  end: number;
}

function coalesce(runs: Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last && last.label === r.label) last.end = r.end;
    else out.push({ ...r });
  }
  return out;
}

/** Splits [a, b) where the dominant direction changes; pauses and short wobbles join a neighbour. */
function motionRuns(cleaned: CleanedTrajectory, a: number, b: number): Run[] {
  if (b - a <= HEURISTIC_PARAMS.minSegmentSteps) return [{ label: 'still', start: a, end: b }];
  const labels = directionLabels(cleaned, a, b);
  let runs = coalesce(labels.map((label, i) => ({ label, start: a + i, end: a + i + 1 })));
  // A pause belongs to the motion it ends (operators settle before a grasp), or the one it starts.
  const moving = runs.filter((r) => r.label !== 'still');
  if (moving.length === 0) return [{ label: 'still', start: a, end: b }];
  runs = coalesce(
    runs.map((r, i) => {
      if (r.label !== 'still') return r;
      const before = runs.slice(0, i).reverse().find((x) => x.label !== 'still');
      const after = runs.slice(i + 1).find((x) => x.label !== 'still');
      return { ...r, label: (before ?? after ?? r).label };
    }),
  );
  for (;;) {
    if (runs.length <= 1) break;
    let shortest = -1;
    runs.forEach((r, i) => {
      const len = r.end - r.start;
      if (len < HEURISTIC_PARAMS.minSegmentSteps && (shortest < 0 || len < (runs[shortest] as Run).end - (runs[shortest] as Run).start)) shortest = i;
    });
    if (shortest < 0) break;
    const prev = runs[shortest - 1];
    const next = runs[shortest + 1];
    const into = !prev ? next : !next ? prev : next.end - next.start > prev.end - prev.start ? next : prev;
    runs = coalesce(runs.map((r, i) => (i === shortest ? { ...r, label: (into as Run).label } : r)));
  }
  return runs;
}

function segmentTrajectory(cleaned: CleanedTrajectory): { spans: Span[]; segments: Segment[][] } {
  const spans = gripperSpans(cleaned);
  const segments = spans.map((span, k): Segment[] => {
    const out: Segment[] = [];
    let a = span.start;
    if (k > 0) {
      // The transition step plus the still steps after it, while the fingers close or open.
      let hold = span.start + 1;
      while (hold < span.end && Math.hypot(...(cleaned.translation[hold] as Vec3)) < HEURISTIC_PARAMS.holdMetersPerStep) hold++;
      if (span.end - hold < HEURISTIC_PARAMS.minSegmentSteps) hold = span.end;
      out.push({ start: span.start, end: hold, role: span.gripper === 0 ? 'grasp' : 'release' });
      a = hold;
    }
    if (a < span.end) {
      const role: Role = span.gripper === 0 ? 'carry' : 'approach';
      for (const r of motionRuns(cleaned, a, span.end)) out.push({ start: r.start, end: r.end, role });
    }
    return out;
  });
  return { spans, segments };
}

/**
 * Heuristic segments for a cleaned trajectory: contiguous, non-empty, covering [0, steps).
 *
 * Subtasks follow the gripper through the instruction's steps: open before a grasp = "Move to X",
 * the close = "Grasp X", closed = the step's carry ("Move to Y", "Lift X", ...), the open =
 * "Release X", open afterwards = "Move to <next object>" or, after the last step, "Move away from Y".
 * A subtask may span several consecutive language steps (one per motion direction). A close then
 * open that carried the object less than `regraspMaxCarryMeters` is a failed grasp when another
 * grasp follows: the approach to the same object starts again.
 */
export function heuristicSegments(cleaned: CleanedTrajectory, instruction: string): SegmentLabel[] {
  if (cleaned.steps < 1) return [];
  const plan = subtaskPlan(parseInstruction(instruction));
  const at = (i: number): PhaseSubtasks => plan[Math.min(i, plan.length - 1)] as PhaseSubtasks;
  const { spans, segments } = segmentTrajectory(cleaned);

  const subtasks: string[][] = [];
  let next = 0;
  let holding: number | undefined;
  spans.forEach((span, k) => {
    const segs = segments[k] as Segment[];
    if (span.gripper === 0) {
      const clause = k === 0 ? 0 : Math.min(next, plan.length - 1);
      holding = clause;
      subtasks.push(segs.map((s) => (s.role === 'grasp' ? at(clause).grasp : at(clause).carry)));
      return;
    }
    if (k === 0) {
      subtasks.push(segs.map(() => at(0).approach));
      return;
    }
    const held = holding ?? Math.min(next, plan.length - 1);
    const carried = Math.hypot(...sum(cleaned, (spans[k - 1] as Span).start, span.start));
    const graspsLater = spans.slice(k + 1).some((s) => s.gripper === 0);
    next = carried >= HEURISTIC_PARAMS.regraspMaxCarryMeters || !graspsLater ? held + 1 : held;
    holding = undefined;
    const after = next < plan.length ? at(next).approach : at(held).retreat;
    subtasks.push(segs.map((s) => (s.role === 'release' ? at(held).release : after)));
  });

  // SegmentLabel caps subtasks at 200 characters; only a pathological instruction gets near it.
  const names = subtasks.flat().map((x) => (x.length <= 200 ? x : x.slice(0, 200).trimEnd()));
  return segments.flat().map((s, i) => {
    const from = s.start > 0 ? (cleaned.gripper[s.start - 1] as 0 | 1) : (cleaned.gripper[s.start] as 0 | 1);
    return {
      start: s.start,
      end: s.end,
      subtask: names[i] as string,
      motionPlan: describeMotion(sum(cleaned, s.start, s.end), { from, to: cleaned.gripper[s.start] as 0 | 1 }),
    };
  });
}
