/**
 * The verifier (docs/method.md, "The verifier"; docs/verifier.md): after each executed action chunk
 * it sees the frames before and after, the current and next subtask, and answers proceed or retry
 * with a reason. Implementations: the simulator oracle (./oracle, true scene state) and Gemini
 * (./gemini, the frames). An operator's verdict signal overrides both in the episode workflow.
 */
import { z } from 'zod';
import { VerdictDecision } from '../../../data-schemas/robot';
import type { StationImageMime } from '../../../data-schemas/station';

export { VerdictDecision };

/** Longest reason kept; a reason is one or two sentences. */
export const MAX_REASON_CHARS = 1000;

/** A verdict: the episode proceeds to the next subtask or retries the current one. */
export const VerifierVerdict = z.strictObject({
  decision: VerdictDecision.describe('"proceed" when the current subtask is complete in the AFTER image, else "retry".'),
  reason: z
    .string()
    .trim()
    .min(1)
    .max(MAX_REASON_CHARS)
    .describe('One sentence naming what is seen, e.g. "the gripper is about 3 cm above the carrot, not around it".'),
});
export type VerifierVerdict = z.infer<typeof VerifierVerdict>;

export interface VerifierFrame {
  /** The main camera's frame. */
  image: Uint8Array;
  mimeType: StationImageMime;
  /** Bridge state [x, y, z, roll, pitch, yaw, gripper]: meters, radians, gripper opening 0 (closed) .. 1 (open). */
  state: number[];
}

export interface VerifierRequest {
  /** The episode's instruction L. */
  instruction: string;
  /** The policy's subtask list (which may be wrong: it is judged as written). */
  subtasks: string[];
  /** The current subtask is `subtasks[subtaskIndex]`, the next one `subtasks[subtaskIndex + 1]` (none after the last). */
  subtaskIndex: number;
  /** Observed before the chunk was executed. */
  before: VerifierFrame;
  /** Observed after the chunk was executed. */
  after: VerifierFrame;
}

export interface VerifierAnswer {
  verdict: VerifierVerdict;
  /** 'oracle' or 'gemini:<model>'. */
  verifier: string;
  /** VERIFIER_PROMPT_VERSION for model verifiers; null for the oracle, which has no prompt. */
  promptVersion: string | null;
  /** The model's answer text as received; null for the oracle. */
  raw: string | null;
  latencyMs: number;
  /** Tokens the model billed for this answer (thinking included); absent for the oracle. */
  usage?: { inputTokens: number; outputTokens: number };
}

export interface Verifier {
  /**
   * One verdict. Throws a VerifierError (an ApplicationFailure) for a bad request or an unusable
   * model answer, and the Gemini failures of activities/gemini/errors.ts for HTTP errors.
   */
  verify(req: VerifierRequest, signal?: AbortSignal): Promise<VerifierAnswer>;
  close?(): Promise<void>;
}

/** The current and next subtask of a request, after checking that the index points into the list. */
export function currentAndNext(req: Pick<VerifierRequest, 'subtasks' | 'subtaskIndex'>): { current: string; next: string | null } {
  const { subtasks, subtaskIndex: i } = req;
  if (subtasks.length === 0) throw new RangeError('the subtask list is empty');
  if (!Number.isInteger(i) || i < 0 || i >= subtasks.length) throw new RangeError(`subtaskIndex must be an integer in [0, ${subtasks.length - 1}], got ${i}`);
  const current = subtasks[i] as string;
  return { current, next: subtasks[i + 1] ?? null };
}
