import { z } from 'zod';
import type { SegmentLabel } from '../../../data-schemas/relabel';
import { validateSegments } from '../record';
import { describeZodIssues } from '../../../data-schemas/issues';
import { unfenceJson } from '../../gemini/response';

/**
 * The Gemini labeler's answer: the zod schema is the one truth; the JSON Schema sent as
 * `responseJsonSchema` is generated from it, so what the model is constrained to and what we accept
 * cannot drift apart. Field names are snake_case because that is what the model reads in the schema
 * and the prompt. Changing this schema changes the prompt: bump GEMINI_PROMPT_VERSION.
 */

/** Far above any Bridge trajectory; only there so the schema has no unbounded integers. */
const MAX_STEP = 100_000;

export const GeminiSegment = z.strictObject({
  start_step: z.int().min(0).max(MAX_STEP).describe('First step of the segment (inclusive), an index from the motion table.'),
  end_step: z.int().min(1).max(MAX_STEP).describe('Step after the last step of the segment (exclusive); the next segment starts here.'),
  // Same bounds as SegmentLabel, so every accepted answer is a valid SegmentLabel.
  subtask: z.string().trim().min(1).max(200).describe('Short imperative subtask, e.g. "Move to lid handle". The first one starts with "Move to".'),
  motion_plan: z
    .string()
    .trim()
    .min(1)
    .max(800)
    .describe('Concise spatial reasoning for the segment in the robot frame (+x forward, +y left, +z up) and the gripper state.'),
});
export type GeminiSegment = z.infer<typeof GeminiSegment>;

export const GeminiAnswer = z.strictObject({
  segments: z.array(GeminiSegment).min(1).max(32).describe('Consecutive segments covering every step of the trajectory, in order.'),
});
export type GeminiAnswer = z.infer<typeof GeminiAnswer>;

/**
 * JSON Schema of the answer for `config.responseJsonSchema` (the @google/genai 2.x field that
 * takes standard JSON Schema; `responseSchema` takes Google's OpenAPI-subset `Schema`). It uses
 * only keywords the Gemini API documents for it (type, properties, required, items, min/maxItems,
 * minimum/maximum, description, additionalProperties) plus string lengths, which the API ignores if
 * it does not enforce them; the parse below enforces everything either way.
 */
export const GEMINI_ANSWER_JSON_SCHEMA: Record<string, unknown> = (() => {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(GeminiAnswer, { target: 'draft-2020-12', io: 'output' });
  return schema;
})();

export type ParsedAnswer = { ok: true; segments: SegmentLabel[] } | { ok: false; problem: string };

/** Longest excerpt of the model's text quoted back in a problem (problems feed re-prompts and reports). */
const EXCERPT_CHARS = 200;
/** Most schema issues listed in one problem; the first few are enough to fix an answer. */
const MAX_ISSUES = 6;

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS)}...` : flat;
}

/**
 * Parses the model's text into segment labels. Every failure is a sentence that goes back to the
 * model in the next prompt, so it says what to fix rather than how the parser failed.
 */
export function parseGeminiAnswer(text: string, steps: number): ParsedAnswer {
  const body = unfenceJson(text);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return { ok: false, problem: `not valid JSON: ${(err as Error).message}; the answer began with: ${excerpt(text)}` };
  }
  const parsed = GeminiAnswer.safeParse(json);
  if (!parsed.success) {
    return { ok: false, problem: `the JSON does not match the answer schema: ${describeZodIssues(parsed.error, { root: '(answer)', max: MAX_ISSUES })}` };
  }
  const segments: SegmentLabel[] = parsed.data.segments.map((s) => ({ start: s.start_step, end: s.end_step, subtask: s.subtask, motionPlan: s.motion_plan }));
  // The same check the record builder applies, so an accepted answer is never rejected later.
  const coverage = validateSegments(segments, steps);
  if (coverage.length > 0) {
    return { ok: false, problem: `the segments do not cover steps 0 to ${steps - 1} exactly once, in order: ${coverage.join(' ')}` };
  }
  return { ok: true, segments };
}
