/**
 * Parsing the VLA's three answers (docs/method.md, "The three prompts and their decoding") and the
 * bounded repair re-prompt a malformed answer gets. Pure: no I/O, no clock.
 *
 * The formats are the ones the model is trained on (data-schemas/prompts.ts): subtasks as numbered
 * lines ("1. Move to carrot"), a motion plan as one short paragraph, an action chunk as a
 * Python-style list of lists `[[dx, dy, dz, gripper], ...]`. Parsing is tolerant where a model is
 * harmlessly chatty (prose or code fences around the list, "1)" or bullets) and strict where the
 * content is wrong; every error names the problem precisely, because it is fed back to the model.
 * Actions are numbered from 1 in errors (the model's "third action" is "action 3").
 *
 * Parsing checks the format and the ActionChunk schema only; the step and workspace limits are the
 * station's safety check (activities/robot/station/safety.ts).
 */
import { ActionChunk } from '../../../data-schemas/d-lan';
import { formatActionChunk, formatSubtaskList, PolicyStage } from '../../../data-schemas/prompts';

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const fail = <T>(error: string): Result<T> => ({ ok: false, error });

/** Longest excerpt of an answer quoted in an error or a repair prompt. */
const QUOTE_CHARS = 80;
/** A motion plan longer than this is a runaway generation, not a plan. */
export const MAX_MOTION_PLAN_CHARS = 1000;

function quote(text: string, max = QUOTE_CHARS): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return JSON.stringify(one.length <= max ? one : `${one.slice(0, max - 3)}...`);
}

// ---------------------------------------------------------------------------------------------
// Subtasks

const ITEM = /^\s*(?:(\d+)\s*[.)]|[-*\u2022])\s+(.*)$/;

/**
 * Numbered lines "1. ...", also "1)" and bullets ("-", "*", "•"). Lines without a marker before
 * the first item (a preamble like "Here are the steps:") and after the last are ignored; numbers
 * must run 1, 2, 3, ...; the first subtask must start with "Move to".
 */
export function parseSubtasks(text: string): Result<string[]> {
  const lines = text.replace(/```[a-z]*\n?/gi, '').split(/\r?\n/);
  const items: string[] = [];
  let started = false;
  let ended = false;
  for (const line of lines) {
    const m = ITEM.exec(line);
    if (!m) {
      if (started && line.trim() !== '') ended = true;
      continue;
    }
    if (ended) return fail(`the subtask list is interrupted by other text before ${quote(line)}; write only the numbered list`);
    started = true;
    const n = m[1];
    if (n !== undefined && Number(n) !== items.length + 1) {
      return fail(`subtask number ${n} is out of order, expected ${items.length + 1}`);
    }
    const subtask = (m[2] ?? '').trim();
    if (subtask === '') return fail(`subtask ${items.length + 1} is empty`);
    items.push(subtask);
  }
  if (items.length === 0) {
    return fail(`no numbered subtask list found in ${quote(text)}; expected one subtask per line, numbered "1.", "2.", ...`);
  }
  const first = items[0] ?? '';
  if (!/^move to\b/i.test(first)) return fail(`the first subtask must start with "Move to", got ${quote(first)}`);
  return ok(items);
}

// ---------------------------------------------------------------------------------------------
// Motion plan

/** One paragraph, trimmed, inner line breaks joined by spaces; an optional "Motion plan:" label is dropped. */
export function parseMotionPlan(text: string): Result<string> {
  const body = text
    .replace(/```[a-z]*\n?/gi, '')
    .trim()
    .replace(/^motion plan\s*:\s*/i, '')
    .trim();
  if (body === '') return fail('the motion plan is empty');
  const paragraphs = body.split(/\n\s*\n/).filter((p) => p.trim() !== '');
  if (paragraphs.length > 1) return fail(`the motion plan must be a single paragraph, got ${paragraphs.length} paragraphs`);
  if (/\[\s*\[/.test(body)) return fail('the motion plan contains an action list; describe the motion in words only');
  const plan = body.replace(/\s+/g, ' ');
  if (plan.length > MAX_MOTION_PLAN_CHARS) return fail(`the motion plan is ${plan.length} characters long, at most ${MAX_MOTION_PLAN_CHARS}`);
  return ok(plan);
}

// ---------------------------------------------------------------------------------------------
// Action chunk

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const FIELDS = ['dx', 'dy', 'dz', 'gripper'] as const;
const EXPECTED = 'expected a list of actions [[dx, dy, dz, gripper], ...]';

/** Index of the first "[" of the first "[[" (whitespace allowed between), or -1. */
function listStart(text: string): number {
  const m = /\[\s*\[/.exec(text);
  return m ? m.index : -1;
}

/** Index of the "]" closing the "[" at `start`, or -1 when the text ends first. */
function matchingClose(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '[') depth++;
    else if (text[i] === ']' && --depth === 0) return i;
  }
  return -1;
}

/** The numbers of `[...]` at depth 2, as written; errors name the action (1-based). */
function parseList(inner: string): Result<number[][]> {
  const actions: number[][] = [];
  let i = 0;
  const skip = (): void => {
    while (i < inner.length && /\s/.test(inner[i] ?? '')) i++;
  };
  for (;;) {
    skip();
    if (i >= inner.length) break;
    const n = actions.length + 1;
    if (inner[i] !== '[') return fail(`expected "[" to start action ${n}, got ${quote(inner.slice(i, i + 20))}`);
    const close = inner.indexOf(']', i);
    const open = inner.indexOf('[', i + 1);
    if (close < 0) return fail(`action ${n} is not closed with "]"`);
    if (open >= 0 && open < close) return fail(`action ${n} contains a nested list; each action is a flat [dx, dy, dz, gripper]`);
    const tokens = inner
      .slice(i + 1, close)
      .split(',')
      .map((t) => t.trim());
    // Python allows a trailing comma: [0.01, 0, 0, 1,]
    if (tokens.length > 1 && tokens[tokens.length - 1] === '') tokens.pop();
    if (tokens.length === 1 && tokens[0] === '') return fail(`action ${n} is empty, expected 4 numbers [dx, dy, dz, gripper]`);
    const values: number[] = [];
    for (const [k, t] of tokens.entries()) {
      const field = k < FIELDS.length ? `${FIELDS[k]} ` : '';
      if (t === '') return fail(`action ${n} has an empty value at position ${k + 1}`);
      if (!NUMBER.test(t)) return fail(`action ${n}: ${field}${quote(t)} is not a number`);
      values.push(Number(t));
    }
    if (values.length !== 4) return fail(`action ${n} has ${values.length} numbers, expected 4 [dx, dy, dz, gripper]`);
    actions.push(values);
    i = close + 1;
    skip();
    if (i >= inner.length) break;
    if (inner[i] !== ',') return fail(`expected "," or "]" after action ${n}, got ${quote(inner.slice(i, i + 20))}`);
    i++;
  }
  if (actions.length === 0) return fail('the action list is empty; an action chunk needs at least one [dx, dy, dz, gripper]');
  return ok(actions);
}

/** A zod issue on an ActionChunk as a sentence about the model's list. */
function describeIssue(actions: readonly number[][], path: readonly PropertyKey[], message: string): string {
  const [a, f] = path;
  if (typeof a !== 'number') return message;
  const n = a + 1;
  const v = typeof f === 'number' ? actions[a]?.[f] : undefined;
  if (f === 3 && v !== undefined && Number.isFinite(v)) return `action ${n}: gripper ${v} outside [0, 1] (1 open, 0 closed)`;
  if (typeof f === 'number' && v !== undefined && !Number.isFinite(v)) return `action ${n}: ${FIELDS[f] ?? 'value'} ${v} is not a finite number`;
  return `action ${n}: ${message}`;
}

/**
 * The action chunk in `text`: the outermost `[[...]]` (prose and code fences around it ignored),
 * each action four plain numbers, validated with the ActionChunk schema (finite values, gripper in
 * [0, 1], at least one action).
 */
export function parseActionChunk(text: string): Result<ActionChunk> {
  const start = listStart(text);
  if (start < 0) {
    const single = /\[[^[\]]*\]/.exec(text);
    if (single && /^\[\s*\]$/.test(single[0])) return fail('the action list is empty; an action chunk needs at least one [dx, dy, dz, gripper]');
    if (single) return fail(`found a single action ${quote(single[0])}, ${EXPECTED}`);
    return fail(`no list of actions found in ${quote(text)}; ${EXPECTED}`);
  }
  const end = matchingClose(text, start);
  if (end < 0) return fail(`the action list is not closed with "]]" (truncated answer?); ${EXPECTED}`);
  const parsed = parseList(text.slice(start + 1, end));
  if (!parsed.ok) return parsed;
  const checked = ActionChunk.safeParse(parsed.value);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    return fail(issue ? describeIssue(parsed.value, issue.path, issue.message) : 'the action list is invalid');
  }
  return ok(checked.data);
}

// ---------------------------------------------------------------------------------------------
// Any stage, and repair

export type StageValue = { subtasks: string[]; motion_plan: string; action: ActionChunk };

/** The parser of a stage. */
export function parseStage<S extends PolicyStage>(stage: S, text: string): Result<StageValue[S]> {
  switch (stage) {
    case PolicyStage.subtasks:
      return parseSubtasks(text) as Result<StageValue[S]>;
    case PolicyStage.motionPlan:
      return parseMotionPlan(text) as Result<StageValue[S]>;
    default:
      return parseActionChunk(text) as Result<StageValue[S]>;
  }
}

/** The required format of a stage's answer, with an example in the exact trained format. */
export function formatSpec(stage: PolicyStage): string {
  switch (stage) {
    case PolicyStage.subtasks:
      return [
        'Answer with only the list of subtasks, one per line, numbered "1.", "2.", ...; the first subtask starts with "Move to". For example:',
        formatSubtaskList(['Move to carrot', 'Grasp carrot', 'Move to plate', 'Release carrot', 'Move away from plate']),
      ].join('\n');
    case PolicyStage.motionPlan:
      return [
        'Answer with only the motion plan: one short paragraph in words (no list of numbers), with the directions (+x forward, +y left, +z up) and the gripper state. For example:',
        'Move primarily down (about 6 cm) and slightly forward (about 2 cm), keeping the gripper open.',
      ].join('\n');
    default:
      return [
        'Answer with only the action chunk: a list of [dx, dy, dz, gripper] with four numbers per action, dx, dy, dz in metres (+x forward, +y left, +z up), gripper 1 for open and 0 for closed, and nothing else. For example:',
        formatActionChunk([
          [0.012, -0.003, 0, 1],
          [0.012, -0.003, -0.01, 1],
          [0, 0, 0, 0],
        ]),
      ].join('\n');
  }
}

/** Longest excerpt of the bad answer repeated in a repair prompt. */
export const REPAIR_QUOTE_CHARS = 600;

/**
 * The re-prompt after a malformed answer: the original prompt, the bad answer (shortened), what was
 * wrong, and the required format with an example.
 */
export function repairPrompt(stage: PolicyStage, originalPrompt: string, badAnswer: string, error: string): string {
  const shown = badAnswer.length <= REPAIR_QUOTE_CHARS ? badAnswer : `${badAnswer.slice(0, REPAIR_QUOTE_CHARS)}...`;
  return [
    originalPrompt,
    '',
    'Your previous answer could not be used:',
    '"""',
    shown.trim() === '' ? '(empty)' : shown,
    '"""',
    `Problem: ${error}.`,
    formatSpec(stage),
  ].join('\n');
}

export interface DecodeAttempt {
  prompt: string;
  raw: string;
  /** Null when this attempt parsed. */
  error: string | null;
}

export type DecodeResult<T> = { ok: true; value: T; attempts: DecodeAttempt[] } | { ok: false; error: string; attempts: DecodeAttempt[] };

/**
 * Asks, parses, and on a malformed answer re-prompts with `repairPrompt`, at most `maxRepairs`
 * times (so at most maxRepairs + 1 calls). Every attempt is returned, for recording and for
 * counting the cost of format failures.
 */
export async function decodeWithRepair<S extends PolicyStage>(opts: {
  stage: S;
  prompt: string;
  ask: (prompt: string, attempt: number) => Promise<string> | string;
  maxRepairs: number;
}): Promise<DecodeResult<StageValue[S]>> {
  if (!Number.isInteger(opts.maxRepairs) || opts.maxRepairs < 0) throw new RangeError(`maxRepairs must be a non-negative integer, got ${opts.maxRepairs}`);
  const attempts: DecodeAttempt[] = [];
  let prompt = opts.prompt;
  for (let attempt = 0; ; attempt++) {
    const raw = await opts.ask(prompt, attempt);
    const parsed = parseStage(opts.stage, raw);
    attempts.push({ prompt, raw, error: parsed.ok ? null : parsed.error });
    if (parsed.ok) return { ok: true, value: parsed.value, attempts };
    if (attempt >= opts.maxRepairs) {
      return { ok: false, error: `${opts.stage} answer still malformed after ${opts.maxRepairs} repair(s): ${parsed.error}`, attempts };
    }
    prompt = repairPrompt(opts.stage, opts.prompt, raw, parsed.error);
  }
}
