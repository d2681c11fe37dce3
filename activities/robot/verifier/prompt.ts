/**
 * The model verifier's prompt (docs/method.md, "The verifier"): the frames before and after a chunk, the
 * instruction, the plan with the current and next subtask marked, and the strict rule. The answer is
 * constrained to VERIFIER_ANSWER_JSON_SCHEMA, generated from the zod schema that parses it.
 *
 * Any change of the wording below or of VerifierVerdict must bump VERIFIER_PROMPT_VERSION: it is
 * recorded with every verdict, so verdicts of different prompts can be told apart.
 */
import { z } from 'zod';
import { VerifierVerdict, type VerifierFrame } from './types';

export const VERIFIER_PROMPT_VERSION = 'verifier-v1';

/**
 * Lines of the user prompt that tools may read back (the local Gemini-wire test server does). Each
 * sits alone on its line, its value JSON-quoted so that no subtask can break the prompt.
 */
export const VERIFIER_PROMPT_MARKERS = {
  instruction: /^Instruction: (".*")$/m,
  current: /^Current subtask: (".*")$/m,
  /** `null` after the last subtask. */
  next: /^Next subtask: (".*"|null)$/m,
} as const;

export const VERIFIER_SYSTEM_INSTRUCTION = [
  'You verify the progress of a robot arm, one subtask at a time. The robot is a WidowX 250 arm in a toy-kitchen scene;',
  'the images come from a fixed camera facing the robot.',
  'Robot frame: +x is forward (away from the robot base), -x backward; +y is left, -y right; +z is up, -z down; positions in meters.',
  'The gripper opening is 1 when fully open and 0 when closed; closed on an object it stays partly open.',
  '',
  'You get the image and the robot state BEFORE and AFTER the robot executed one chunk of actions for the current subtask.',
  'Decide whether the CURRENT subtask is complete in the AFTER image:',
  '- "proceed": it is clearly complete, so the robot may start the next subtask.',
  '- "retry": it is not complete, you cannot see that it is, or something went wrong (an object dropped, the wrong object, an object knocked over).',
  '',
  'Be strict:',
  '- "Move to X" followed by "Grasp X" is complete only if the open gripper is aligned for that grasp: its fingers are',
  '  around X at X\'s height, so that closing them would grasp X. Above X, beside X or short of X is not complete.',
  '- "Move to Y" while holding an object is complete only if the held object is right over Y, low enough to be released onto or into Y.',
  '- "Grasp X" is complete only if the closed gripper holds X (X is between the fingers and moves with them).',
  '- "Lift X" (or "Pick up X"): X is held and clearly raised off the table.',
  '- "Release X": the gripper is open, X is no longer held, and X rests on or in the destination the plan carried it to.',
  '- "Move away from Y": the gripper is open, empty and clearly above the scene.',
  'When in doubt, answer "retry".',
  '',
  'Answer with JSON only, matching the response schema: the decision, and as the reason one sentence that names what you see',
  '(e.g. "the gripper is about 3 cm above the carrot, not around it").',
].join('\n');

/** One part of the user turn; structurally a `Part` of @google/genai. */
export type VerifierPromptPart = { text: string } | { inlineData: { mimeType: 'image/jpeg'; data: string } };

export interface VerifierPromptInput {
  instruction: string;
  subtasks: readonly string[];
  subtaskIndex: number;
  before: VerifierFrame;
  after: VerifierFrame;
}

const f3 = (v: number | undefined): string => (v ?? NaN).toFixed(3);

/** "x 0.300, y -0.020, z 0.160 m; gripper 1.00 (open)". */
export function describeState(state: readonly number[]): string {
  const g = state[6] ?? NaN;
  return `x ${f3(state[0])}, y ${f3(state[1])}, z ${f3(state[2])} m; gripper ${g.toFixed(2)} (${g >= 0.5 ? 'open' : 'closed'})`;
}

function image(frame: VerifierFrame): VerifierPromptPart {
  return { inlineData: { mimeType: frame.mimeType, data: Buffer.from(frame.image.buffer, frame.image.byteOffset, frame.image.byteLength).toString('base64') } };
}

/** The user turn: text, the BEFORE frame, the AFTER frame, then the question. */
export function buildVerifierPrompt(input: VerifierPromptInput): VerifierPromptPart[] {
  const i = input.subtaskIndex;
  const plan = input.subtasks.map((s, k) => `${k + 1}. ${s}${k < i ? '  (done)' : k === i ? '  <- current' : ''}`);
  const next = input.subtasks[i + 1];
  const context = [
    `Instruction: ${JSON.stringify(input.instruction)}`,
    'Plan:',
    ...plan,
    `Current subtask: ${JSON.stringify(input.subtasks[i] ?? '')}`,
    `Next subtask: ${next === undefined ? 'null' : JSON.stringify(next)}`,
    next === undefined ? 'The current subtask is the last one.' : `Judge the current subtask with the next one in mind: it must be possible to start "${next}" right away.`,
    `Robot state BEFORE: ${describeState(input.before.state)}`,
    `Robot state AFTER: ${describeState(input.after.state)}`,
  ].join('\n');
  return [
    { text: context },
    { text: 'BEFORE the chunk:' },
    image(input.before),
    { text: 'AFTER the chunk:' },
    image(input.after),
    { text: `Is the current subtask ${JSON.stringify(input.subtasks[i] ?? '')} complete in the AFTER image? Answer with the JSON object.` },
  ];
}

/**
 * JSON Schema of the answer for `config.responseJsonSchema` (standard JSON Schema, as the relabel
 * labeler sends it): generated from VerifierVerdict, so what the model is constrained to and what
 * the parser accepts cannot drift apart.
 */
export const VERIFIER_ANSWER_JSON_SCHEMA: Record<string, unknown> = (() => {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(VerifierVerdict, { target: 'draft-2020-12', io: 'output' });
  return schema;
})();
