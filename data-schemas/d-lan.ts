import { z } from 'zod';
import { Finite, IsoDateTime, RelativeRef, SafeId, Sha256Hex, ObjectUri } from './common';
import { Gripper } from './d-rob';

/**
 * D_lan: a trajectory rewritten as N language steps (docs/method.md, "D_lan"): per step a key frame, a
 * high-level subtask, a mid-level motion plan and a low-level action chunk written as text.
 */

/** One command of an action chunk: [dx, dy, dz (m), gripper (1 open, 0 closed)]. */
export const ChunkAction = z.tuple([Finite, Finite, Finite, Gripper]);
export type ChunkAction = z.infer<typeof ChunkAction>;

/** Rendered to text as a Python-style list of lists `[[dx, dy, dz, gripper], ...]`, variable length. */
export const ActionChunk = z.array(ChunkAction).min(1, 'an action chunk needs at least one action');
export type ActionChunk = z.infer<typeof ActionChunk>;

export const Direction = z.enum(['left', 'right', 'up', 'down', 'forward', 'backward', 'none']);
export type Direction = z.infer<typeof Direction>;

export const DLanStep = z.strictObject({
  index: z.int().nonnegative(),
  /** Key observation image o_i, relative to the dataset root. */
  keyFrame: RelativeRef,
  /** Source D_rob steps this language step covers, inclusive start, exclusive end. */
  sourceSteps: z.tuple([z.int().nonnegative(), z.int().positive()]),
  subtask: z.string().trim().min(1),
  motionPlan: z.string().trim().min(1),
  actionChunk: ActionChunk,
});
export type DLanStep = z.infer<typeof DLanStep>;

export const AuxiliaryLabels = z.strictObject({
  /** (o_i, o_j, l_i): the subtask l_i, begun at key frame i, is complete at key frame j. */
  subtaskCompletion: z.array(
    z.strictObject({ fromStep: z.int().nonnegative(), toStep: z.int().nonnegative(), subtask: z.string().min(1) }),
  ),
  /** Dominant direction of motion per source D_rob step. */
  directions: z.array(z.strictObject({ sourceStep: z.int().nonnegative(), direction: Direction })),
});
export type AuxiliaryLabels = z.infer<typeof AuxiliaryLabels>;

/** A run of consecutive language steps with the same subtask: steps fromStep .. toStep - 1. */
export interface SubtaskRun {
  subtask: string;
  fromStep: number;
  toStep: number;
}

/**
 * The runs of equal consecutive subtasks. A run is one subtask worked on over several steps (the
 * heuristic gives one step per motion direction, as a robot episode runs one chunk per verifier
 * cycle until the verifier says proceed), so the subtask list a model learns and an episode walks
 * has one entry per run, and a subtask-completion tuple spans a run.
 */
export function subtaskRuns(subtasks: readonly string[]): SubtaskRun[] {
  const runs: SubtaskRun[] = [];
  subtasks.forEach((subtask, i) => {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.subtask === subtask) last.toStep = i + 1;
    else runs.push({ subtask, fromStep: i, toStep: i + 1 });
  });
  return runs;
}

export const Labeler = z.strictObject({
  /** 'policy': the steps a robot episode's own policy produced (subtask, plan and chunk per cycle). */
  name: z.enum(['heuristic', 'gemini', 'policy']),
  /** Part of every output key: a new version never overwrites an old one's records. */
  version: SafeId,
  model: z.string().optional(),
  promptVersion: z.string().optional(),
});
export type Labeler = z.infer<typeof Labeler>;

export const D_LAN_FORMAT_VERSION = 1;

export const DLanRecord = z
  .strictObject({
    formatVersion: z.literal(D_LAN_FORMAT_VERSION),
    trajectoryId: SafeId,
    instruction: z.string().trim().min(1),
    steps: z.array(DLanStep).min(1),
    auxiliary: AuxiliaryLabels,
    labeler: Labeler,
    provenance: z.strictObject({
      sourceDataset: ObjectUri,
      sourceRecord: RelativeRef,
      sourceRecordSha256: Sha256Hex,
      labeledAt: IsoDateTime,
    }),
  })
  .superRefine((r, ctx) => {
    r.steps.forEach((s, i) => {
      if (s.index !== i) ctx.addIssue({ code: 'custom', path: ['steps', i, 'index'], message: `step index ${s.index} out of order, expected ${i}` });
      if (s.sourceSteps[1] <= s.sourceSteps[0]) {
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'sourceSteps'], message: 'sourceSteps must be a non-empty [start, end) range' });
      }
    });
  });
export type DLanRecord = z.infer<typeof DLanRecord>;
