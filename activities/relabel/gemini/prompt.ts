import { GEMINI_PROMPT_VERSION, type CleanedTrajectory } from '../../../data-schemas/relabel';

/**
 * The Gemini labeler's prompt (docs/method.md, "Relabelling with Gemini"): the model sees the instruction, a per-step
 * motion table and a few key frames, and proposes the segmentation and the language only. The
 * action numbers of D_lan come from the trajectory, never from this answer.
 *
 * Any change of the wording below or of the answer schema in `response.ts` must bump
 * GEMINI_PROMPT_VERSION (data-schemas/relabel.ts), because it is part of the output key: records
 * labelled by different prompts must never mix in one output folder.
 */
export { GEMINI_PROMPT_VERSION };

/** Most key frames one prompt carries; each costs about 258 input tokens at our size. */
export const MAX_KEY_FRAMES = 8;

/**
 * Lines of the user prompt that tools may read back (the local Gemini-wire test server does, to
 * answer a valid segmentation without a model). Each sits alone on its line.
 * - `Trajectory steps: <T>`: the number of steps; segments must cover [0, T).
 * - `Instruction: <JSON string>`: the task instruction L, JSON-quoted so it cannot break the prompt.
 */
export const PROMPT_MARKERS = {
  steps: /^Trajectory steps: (\d+)$/m,
  instruction: /^Instruction: (".*")$/m,
} as const;

export const SYSTEM_INSTRUCTION = [
  'You annotate robot teleoperation trajectories so that a vision-language model can learn to act from language.',
  'The robot is a WidowX 250 arm in a toy-kitchen scene, recorded at 5 Hz. Images come from a fixed camera facing the robot.',
  'Robot frame: +x is forward (away from the robot base), -x backward; +y is left, -y right; +z is up, -z down. The gripper is open or closed.',
  '',
  'Split the trajectory into consecutive segments, one per high-level subtask:',
  '- A segment is [start_step, end_step): start_step inclusive, end_step exclusive, using the step indices of the motion table.',
  '- The first segment starts at step 0; each next segment starts exactly where the previous one ended; the last one ends at T, the number of steps. No gaps, no overlaps, no empty segments.',
  '- Put boundaries where the phase of the motion changes: the gripper closes or opens, the arm stops approaching and starts lifting or carrying, the direction of travel changes.',
  '- Use as few segments as the task needs, usually 2 to 8.',
  '- subtask: a short imperative phrase naming the object or place. The first subtask starts with "Move to".',
  '  Example for "open the silver pot": "Move to lid handle", "Grasp lid handle", "Lift lid".',
  '- motion_plan: one or two sentences of concise spatial reasoning for that segment in the robot frame: which way the gripper travels',
  '  (forward/backward, left/right, up/down, roughly how far) and the gripper state (stays open, closes, stays closed, opens).',
  '  Example: "The lid handle is ahead and to the left: move forward and left, then down slightly, with the gripper open."',
  '- Never write action numbers; the actions come from the recorded trajectory.',
  '',
  'Answer with JSON only, matching the response schema.',
].join('\n');

/** One part of the user turn; structurally a `Part` of @google/genai. */
export type PromptPart = { text: string } | { inlineData: { mimeType: 'image/jpeg'; data: string } };

export interface PromptInput {
  instruction: string;
  cleaned: CleanedTrajectory;
  /** Already downsampled JPEG frames of the main camera, base64, in step order. */
  keyFrames: { step: number; jpegBase64: string }[];
  /** Problems of earlier answers for this trajectory, oldest first. */
  feedback: string[];
}

export interface GeminiPrompt {
  systemInstruction: string;
  /** The parts of the single user turn. */
  parts: PromptPart[];
}

/**
 * Up to `max` step indices spread evenly over [0, steps), always including the first and last
 * step, so the model sees the start state and the outcome.
 */
export function keyFrameSteps(steps: number, max = MAX_KEY_FRAMES): number[] {
  if (steps <= 0 || max <= 0) return [];
  if (steps <= max) return Array.from({ length: steps }, (_, i) => i);
  if (max === 1) return [0];
  const picked = new Set<number>();
  for (let i = 0; i < max; i++) picked.add(Math.round((i * (steps - 1)) / (max - 1)));
  return [...picked].sort((a, b) => a - b);
}

const signed = (metres: number): string => {
  const cm = Math.round(metres * 1000) / 10;
  // -0.0 would read as a movement to the model; print it as a plain zero.
  return cm === 0 ? '+0.0' : `${cm > 0 ? '+' : ''}${cm.toFixed(1)}`;
};

/**
 * The motion table: per step the commanded displacement, the position at that step relative to
 * step 0 (before its command), both in cm, and the gripper. Step indices are the ones segments
 * must use.
 */
export function motionTable(cleaned: CleanedTrajectory): string {
  const rows = ['step | move dx dy dz (cm) | position x y z (cm, relative to step 0) | gripper'];
  const at: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < cleaned.steps; i++) {
    const [dx, dy, dz] = cleaned.translation[i] ?? [0, 0, 0];
    const gripper = cleaned.gripper[i] === 0 ? 'closed' : 'open';
    rows.push(`${i} | ${signed(dx)} ${signed(dy)} ${signed(dz)} | ${signed(at[0])} ${signed(at[1])} ${signed(at[2])} | ${gripper}`);
    at[0] += dx;
    at[1] += dy;
    at[2] += dz;
  }
  return rows.join('\n');
}

export function buildGeminiPrompt(input: PromptInput): GeminiPrompt {
  const steps = input.cleaned.steps;
  const parts: PromptPart[] = [
    {
      text: [
        'Label this trajectory.',
        `Instruction: ${JSON.stringify(input.instruction)}`,
        `Trajectory steps: ${steps}`,
        `Segments must cover steps 0 to ${steps - 1}: the first starts at 0, the last ends at ${steps}.`,
        '',
        'Motion table (the command of each step; x forward, y left, z up):',
        motionTable(input.cleaned),
      ].join('\n'),
    },
  ];
  if (input.keyFrames.length > 0) {
    parts.push({ text: `Key frames from the main camera (${input.keyFrames.length}), each labelled with its step:` });
    for (const frame of input.keyFrames) {
      parts.push({ text: `Key frame at step ${frame.step}:` });
      parts.push({ inlineData: { mimeType: 'image/jpeg', data: frame.jpegBase64 } });
    }
  }
  if (input.feedback.length > 0) {
    parts.push({
      text: [
        'Earlier answers for this trajectory were rejected. Fix these problems in this answer:',
        ...input.feedback.map((problem) => `- Your previous answer was rejected: ${problem}`),
      ].join('\n'),
    });
  }
  return { systemInstruction: SYSTEM_INSTRUCTION, parts };
}
