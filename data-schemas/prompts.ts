import type { ActionChunk, Direction } from './d-lan';

/**
 * The VLA's three prompts (docs/method.md, "The three prompts and their decoding"). Training samples (`shardDataset`) and
 * inference (robot episodes) render them with these functions, so the model is asked at run
 * time exactly what it was trained on. Changing a template changes POLICY_PROMPT_VERSION, which is
 * recorded in every shard manifest and training run.
 */
// v2: the subtask list names a run of equal subtasks once; the training-only direction-label prompt.
export const POLICY_PROMPT_VERSION = 'v2';

export const PolicyStage = {
  subtasks: 'subtasks',
  motionPlan: 'motion_plan',
  action: 'action',
} as const;
export type PolicyStage = (typeof PolicyStage)[keyof typeof PolicyStage];
export const POLICY_STAGES: readonly PolicyStage[] = [PolicyStage.subtasks, PolicyStage.motionPlan, PolicyStage.action];

/** Stage 1: from o_0 and L, every high-level step once, at episode start. */
export function subtasksPrompt(instruction: string): string {
  return [
    `The robot's task is: "${instruction}".`,
    'Looking at the image, list every high-level subtask the robot must do, in order, one per line,',
    'numbered "1.", "2.", ... The first subtask starts with "Move to".',
  ].join('\n');
}

/** The subtask list as the model writes it: numbered lines. */
export function formatSubtaskList(subtasks: readonly string[]): string {
  return subtasks.map((s, i) => `${i + 1}. ${s}`).join('\n');
}

/** Stage 2: from l_i and o_i, concise spatial reasoning with the axis conventions. */
export function motionPlanPrompt(subtask: string): string {
  return [
    `Current subtask: "${subtask}".`,
    'Describe briefly how the gripper must move to do it. Axes: +x forward (away from the robot base),',
    '+y left, +z up; say whether the gripper should be open or closed.',
  ].join('\n');
}

/** Stage 3: from o_i, l_i and m_i, only the list of [dx, dy, dz, gripper]. */
export function actionPrompt(subtask: string, motionPlan: string): string {
  return [
    `Current subtask: "${subtask}".`,
    `Motion plan: ${motionPlan}`,
    'Output only the action chunk: a list of [dx, dy, dz, gripper] with dx, dy, dz in metres',
    '(+x forward, +y left, +z up) and gripper 1 for open, 0 for closed.',
  ].join('\n');
}

/**
 * The auxiliary direction labels (training only, not asked at run time): from o_i and l_i, the
 * dominant direction of each of the step's `steps` control steps.
 */
export function directionPrompt(subtask: string, steps: number): string {
  return [
    `Current subtask: "${subtask}".`,
    `In which direction does the gripper move at each of the next ${steps} control steps? Answer one word per step,`,
    'separated by commas: forward, backward, left, right, up, down or none (+x forward, +y left, +z up).',
  ].join('\n');
}

/** Direction labels as the model writes them: `forward, forward, down, none`. */
export function formatDirections(directions: readonly Direction[]): string {
  return directions.join(', ');
}

/** Fixed decimals, without the "-0.000" that toFixed gives tiny negatives. */
export function fixed(v: number, digits: number): string {
  const s = v.toFixed(digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

/** Gripper as recorded: 0 or 1 after binarisation, though the schema allows anything in [0, 1]. */
export const formatGripperValue = (g: number): string => (Number.isInteger(g) ? String(g) : fixed(g, 2));

export const formatAction = ([dx, dy, dz, g]: ActionChunk[number]): string => `[${fixed(dx, 3)}, ${fixed(dy, 3)}, ${fixed(dz, 3)}, ${formatGripperValue(g)}]`;

/** The chunk as the model sees it: `[[0.012, -0.003, 0.000, 1], ...]`, metres to the millimetre. */
export function formatActionChunk(chunk: ActionChunk): string {
  return `[${chunk.map(formatAction).join(', ')}]`;
}
