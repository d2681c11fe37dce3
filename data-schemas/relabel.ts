import { z } from 'zod';
import { ObjectUri, SafeId } from './common';

/**
 * The relabel pipeline's contracts (D_rob -> D_lan): labeler choice, what a labeler returns, the
 * workflows' inputs and results.
 */

/** Version of the heuristic labeler's rules; bump when its output changes. Part of the output key. */
export const HEURISTIC_LABELER_VERSION = 'h1';
export const DEFAULT_GEMINI_MODEL = 'gemini-2.5-flash';

export const LabelerChoice = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('heuristic') }),
  z.strictObject({
    name: z.literal('gemini'),
    /** @default 'gemini-2.5-flash' */
    model: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,80}$/, 'must be a Gemini model name such as gemini-2.5-flash').default(DEFAULT_GEMINI_MODEL),
  }),
]);
export type LabelerChoice = z.infer<typeof LabelerChoice>;

/**
 * One language step as a labeler proposes it: a [start, end) range of source D_rob steps with its
 * subtask and motion plan. The action chunk is never the labeler's: it is built from the
 * trajectory's real actions.
 */
export const SegmentLabel = z.strictObject({
  start: z.int().nonnegative(),
  end: z.int().positive(),
  subtask: z.string().trim().min(1).max(200),
  motionPlan: z.string().trim().min(1).max(800),
});
export type SegmentLabel = z.infer<typeof SegmentLabel>;

export const TokenUsage = z.strictObject({
  inputTokens: z.int().nonnegative(),
  outputTokens: z.int().nonnegative(),
  costUsd: z.number().nonnegative(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;
export const ZERO_USAGE: TokenUsage = { inputTokens: 0, outputTokens: 0, costUsd: 0 };

/** Why a labeler's answer could not be used; each is data for a re-prompt, then quarantine. */
export const LabelProblemKind = z.enum(['safety_block', 'truncated', 'invalid_output']);
export type LabelProblemKind = z.infer<typeof LabelProblemKind>;

export const LabelOutcome = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), segments: z.array(SegmentLabel).min(1), usage: TokenUsage }),
  z.strictObject({ ok: z.literal(false), kind: LabelProblemKind, problem: z.string().min(1), usage: TokenUsage }),
]);
export type LabelOutcome = z.infer<typeof LabelOutcome>;

/**
 * A trajectory after the common Bridge cleaning (DOMAIN.md "Data"): translation per step replaced
 * by the state delta, gripper binarised (1 open, 0 closed). One entry per source step.
 */
export interface CleanedTrajectory {
  steps: number;
  /** [dx, dy, dz] in metres per step. */
  translation: [number, number, number][];
  /** Binarised gripper command per step. */
  gripper: (0 | 1)[];
}

/** Post-processing thresholds (DOMAIN.md: about 2.5 cm per direction, 5 cm absolute). */
export const ChunkAggregation = z.strictObject({
  /** Movement along one axis is emitted once it reaches this many metres. @default 0.025 */
  perAxisMeters: z.number().positive().max(1).default(0.025),
  /** ... or once the total movement since the last emitted command reaches this. @default 0.05 */
  absoluteMeters: z.number().positive().max(1).default(0.05),
});
export type ChunkAggregation = z.infer<typeof ChunkAggregation>;
