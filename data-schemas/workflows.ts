import { z } from 'zod';
import { ObjectUri, Sha256Hex } from './common';
import { ObjectUriField } from './uri';
import { activityContract, type ActivityPreset } from './activity-contract';
import { RelabelDatasetInput, RelabelTrajectoryInput } from './relabel';
import { ShardDatasetInput, TrainLoraInput } from './training';
import { NightlyEvaluationInput, VqaEvaluateInput, VqaSweepInput } from './vqa';
import { EvalCampaignInput, RobotEpisodeInput } from './robot';
import { ExperimentInput } from './experiment';

/**
 * Inputs and results of every workflow. Workflows parse their input with these first: the Web UI
 * can send any JSON.
 */

/** `storeSmoke`: proves the worker bundle loads and an activity writes through the object store. */
export const StoreSmokeInput = z.strictObject({
  /** Where to write; the object is created only if absent, so a re-run returns the first result. */
  outputUri: ObjectUriField,
  text: z.string().min(1).max(10_000),
});
export type StoreSmokeInput = z.infer<typeof StoreSmokeInput>;

export const StoreSmokeResult = z.strictObject({
  uri: ObjectUri,
  sha256: Sha256Hex,
  bytes: z.int().nonnegative(),
  /** False when the object already existed (a re-run): the stored bytes were kept as they were. */
  created: z.boolean(),
});
export type StoreSmokeResult = z.infer<typeof StoreSmokeResult>;

/** The smoke pipeline's one activity, on the CPU worker. */
export const SmokeActivities = activityContract('smoke', ['cpu'], {
  /** Writes the text once; a retry or re-run finds it and reports the stored object. */
  writeSmokeObject: { input: StoreSmokeInput, output: StoreSmokeResult },
});

export const SmokePresets = {
  /** Store outages heal; bad URIs and credentials fail non-retryable inside the activity. */
  write: { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 5, initialInterval: '1 second' } },
} as const satisfies Record<string, ActivityPreset>;

/** Search attributes the namespace registers; all Keyword. */
export const SEARCH_ATTRIBUTES = ['VlaDataset', 'VlaStage', 'VlaModel', 'VlaRetentionGate', 'VlaWaitingOn'] as const;

export { TaskQueue } from './activity-contract';

/** Each workflow type's input schema, by the name the Web UI's "Workflow Type" field takes. */
export const WORKFLOW_INPUTS = {
  storeSmoke: StoreSmokeInput,
  relabelDataset: RelabelDatasetInput,
  relabelTrajectory: RelabelTrajectoryInput,
  shardDataset: ShardDatasetInput,
  trainLora: TrainLoraInput,
  vqaSweep: VqaSweepInput,
  vqaEvaluate: VqaEvaluateInput,
  nightlyEvaluation: NightlyEvaluationInput,
  robotEpisode: RobotEpisodeInput,
  evalCampaign: EvalCampaignInput,
  experiment: ExperimentInput,
} as const;
