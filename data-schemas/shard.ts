import { z } from 'zod';
import { activityContract, type ActivityPreset } from './activity-contract';
import { IsoDateTime, ObjectUri, RelativeRef, SafeId, Sha256Hex } from './common';
import { Labeler } from './d-lan';
import { DataErrorCode, StoreErrorCode } from './failures';
import { POLICY_PROMPT_VERSION } from './prompts';
import { ObjectUriField, joinUri } from './uri';

/**
 * The shard pipeline's contract (`shardDataset`): its input and result, the files it writes to the
 * store, the failure types its activities throw and the activities themselves. Node-free: workflows, activities, the trainer's reader and
 * the JSON Schemas under docs/schemas/ share these.
 *
 * Shards are WebDataset tar files: each sample is the files sharing one key, `<key>.json` (a
 * `ShardSample`) and `<key>.jpg` or `<key>.png` (the sample's one image, the D_rob frame bytes as
 * they were). The Python trainer indexes them with the stdlib `tarfile` (random access by member
 * offset, so a resumed run skips exactly what it has seen); `webdataset` streams them as they are.
 *
 * Under a shard set's root, in the order they are written:
 * - `shards-plan.json` (`ShardPlanFile`): which trajectory goes to which split and shard;
 * - per shard `<split>/shard-<index:06d>.tar` and then its sidecar `<...>.tar.json` (`ShardEntry`),
 *   the marker that the shard is complete (a re-run skips it);
 * - `shards.json` (`ShardManifest`) last: the shard set is complete.
 */

export const SHARD_FORMAT = 'webdataset';
export const SHARD_FORMAT_VERSION = 1;
export const SHARD_MANIFEST_FILE = 'shards.json';
/**
 * The shard plan (which trajectory goes to which split and shard), written under the shard set's
 * root before any shard: every writeShard loads it, and a later run with another source or other
 * settings into the same root is refused instead of mixing two shard sets.
 */
export const SHARD_PLAN_FILE = 'shards-plan.json';

export const Split = z.enum(['train', 'validation']);
export type Split = z.infer<typeof Split>;

/** The three policy stages, and `direction`: the auxiliary per-step direction labels (when `directionLabels` is on). */
export const ShardStage = z.enum(['subtasks', 'motion_plan', 'action', 'direction']);
export type ShardStage = z.infer<typeof ShardStage>;

const TextPart = z.strictObject({ type: z.literal('text'), text: z.string().min(1) });
const ImagePart = z.strictObject({ type: z.literal('image') });

/** One training sample as stored in `<key>.json`: a two-turn chat, the image in the user turn. */
export const ShardSample = z.strictObject({
  /** WebDataset key: no dots (WebDataset splits key from extension at the first dot). */
  key: z.string().regex(/^[A-Za-z0-9_-]+$/),
  trajectoryId: SafeId,
  stage: ShardStage,
  /** D_lan step index (0 for `subtasks`, which covers the whole trajectory). */
  step: z.int().nonnegative(),
  /** File extension of the sample's image inside the tar: `jpg` or `png`. */
  image: z.enum(['jpg', 'png']),
  messages: z.tuple([
    z.strictObject({ role: z.literal('user'), content: z.tuple([ImagePart, TextPart]) }),
    z.strictObject({ role: z.literal('assistant'), content: z.tuple([TextPart]) }),
  ]),
});
export type ShardSample = z.infer<typeof ShardSample>;

export const ShardEntry = z.strictObject({
  /** Relative to the shard set's root, e.g. `train/shard-000003.tar`. */
  path: RelativeRef,
  split: Split,
  index: z.int().nonnegative(),
  sha256: Sha256Hex,
  bytes: z.int().positive(),
  samples: z.int().positive(),
  trajectories: z.array(SafeId).min(1),
});
export type ShardEntry = z.infer<typeof ShardEntry>;

/** A shard's path relative to the shard set's root: `<split>/shard-<index:06d>.tar`. */
export function shardPath(split: Split, index: number): string {
  return `${split}/shard-${String(index).padStart(6, '0')}.tar`;
}

/**
 * The sidecar written right after a shard: its `ShardEntry`. A shard is complete when both exist;
 * a shard without its sidecar (a crash between the two writes) is checked against a fresh build.
 */
export const shardSidecarPath = (split: Split, index: number): string => `${shardPath(split, index)}.json`;

export const ShardManifest = z.strictObject({
  format: z.literal(SHARD_FORMAT),
  formatVersion: z.literal(SHARD_FORMAT_VERSION),
  createdAt: IsoDateTime,
  source: z.strictObject({
    /** The D_lan dataset the samples come from. */
    dataset: ObjectUri,
    /** sha256 of that dataset's manifest.json: a relabel re-run that changes it makes a different shard set. */
    datasetManifestSha256: Sha256Hex,
    labeler: Labeler,
    promptVersion: z.string().min(1),
  }),
  split: z.strictObject({
    validationFraction: z.number().min(0).max(0.5),
    /** Salt of the trajectory hash that assigns splits and shards. */
    seed: z.int().nonnegative(),
  }),
  targetShardBytes: z.int().positive(),
  counts: z.strictObject({
    shards: z.int().nonnegative(),
    samples: z.int().nonnegative(),
    bytes: z.int().nonnegative(),
    bySplit: z.record(Split, z.strictObject({ trajectories: z.int().nonnegative(), samples: z.int().nonnegative(), shards: z.int().nonnegative() })),
    /** Samples per stage; `direction` only in shard sets made with direction labels. */
    byStage: z.partialRecord(ShardStage, z.int().nonnegative()),
  }),
  shards: z.array(ShardEntry),
});
export type ShardManifest = z.infer<typeof ShardManifest>;

/** A trajectory as the plan sees it. */
export const PlannedTrajectory = z.strictObject({
  id: SafeId,
  /** The D_lan record, relative to the D_lan dataset, and its sha256 from the D_lan manifest. */
  record: RelativeRef,
  recordSha256: Sha256Hex,
  /**
   * The source recording's content hash, which decides split and shard. Absent in plans made
   * before the split hashed content (those split by id; their shard sets keep that split).
   */
  contentSha256: Sha256Hex.optional(),
  split: Split,
  shard: z.int().nonnegative(),
  samples: z.int().positive(),
  estimatedBytes: z.int().nonnegative(),
});
export type PlannedTrajectory = z.infer<typeof PlannedTrajectory>;

/** What decides the plan: the same key always gives the same plan, byte for byte. */
export const ShardPlanKey = z.strictObject({
  datasetManifestSha256: Sha256Hex,
  promptVersion: z.string().min(1),
  seed: z.int().nonnegative(),
  validationFraction: z.number().min(0).max(0.5),
  targetShardBytes: z.int().positive(),
  /** Whether the shards hold `direction` samples; plans written before the switch existed had none. */
  directionLabels: z.boolean().default(false),
});
export type ShardPlanKey = z.infer<typeof ShardPlanKey>;

/** `shards-plan.json` under the shard set's root. */
export const ShardPlanFile = z.strictObject({
  formatVersion: z.literal(1),
  key: ShardPlanKey,
  datasetUri: ObjectUri,
  datasetName: SafeId,
  labeler: Labeler,
  plannedAt: IsoDateTime,
  shardsPerSplit: z.record(Split, z.int().nonnegative()),
  /** Sorted by id. */
  trajectories: z.array(PlannedTrajectory),
});
export type ShardPlanFile = z.infer<typeof ShardPlanFile>;

export const samePlanKey = (a: ShardPlanKey, b: ShardPlanKey): boolean =>
  a.datasetManifestSha256 === b.datasetManifestSha256 &&
  a.promptVersion === b.promptVersion &&
  a.seed === b.seed &&
  a.validationFraction === b.validationFraction &&
  a.targetShardBytes === b.targetShardBytes &&
  a.directionLabels === b.directionLabels;

/** Failure types of the shard activities (besides the store's and the dataset's, data-schemas/failures.ts). */
export const ShardFailure = {
  /** Thrown when the output root holds a shard set of another source manifest or other settings. */
  OutputConflict: 'SHARD_OUTPUT_CONFLICT',
  /** Thrown when a shard's bytes do not match its sidecar, or do not parse as the samples it should hold. */
  Corrupt: 'SHARD_CORRUPT',
  /** Thrown when a shard is written before its plan (shards-plan.json) exists; never retried. */
  PlanMissing: 'SHARD_PLAN_MISSING',
  /** Thrown when a shard is asked for that the plan does not list; never retried. */
  NotPlanned: 'SHARD_NOT_PLANNED',
  /** Thrown when another attempt created the shard while this one wrote it; retried, to check its bytes. */
  Race: 'SHARD_RACE',
} as const;

// ---------------------------------------------------------------------------------------------
// shardDataset

export const ShardDatasetInput = z.strictObject({
  /** A D_lan dataset (the output of relabelDataset). */
  datasetUri: ObjectUriField,
  /**
   * Where the shard set goes. Default `<datasetUri>/shards/<POLICY_PROMPT_VERSION>-s<seed>-v<validation %, rounded>`,
   * e.g. `.../shards/v2-s0-v5` (see `defaultShardOutput`). One root holds one shard set: a run with
   * another source manifest or other split settings into an existing root fails; choose a new one.
   */
  outputUri: ObjectUriField.optional(),
  validationFraction: z.number().min(0).max(0.5).default(0.05).describe('Fraction of trajectories held out for validation (0 to 0.5), assigned by a stable hash.'),
  seed: z.int().nonnegative().default(0).describe('Salt of the trajectory hash that assigns splits and shards.'),
  targetShardBytes: z.int().min(64 * 1024).default(256 * 1024 * 1024).describe('Shards are planned to hold about this many bytes (at least 64 KiB).'),
  /**
   * Also train the auxiliary direction labels: one `direction` sample per D_lan step (its key frame
   * and subtask -> the direction of each source step it covers), the paper's additional training
   * signal (docs/training.md). Off gives the three policy stages only. @default true
   */
  directionLabels: z.boolean().default(true),
  maxConcurrentShards: z.int().min(1).max(64).default(4).describe('Shards written at once.'),
});
export type ShardDatasetInput = z.infer<typeof ShardDatasetInput>;

/** `<datasetUri>/shards/<POLICY_PROMPT_VERSION>-s<seed>-v<round(validationFraction * 100)>`. */
export function defaultShardOutput(datasetUri: string, seed: number, validationFraction: number): string {
  return joinUri(datasetUri, 'shards', `${POLICY_PROMPT_VERSION}-s${seed}-v${Math.round(validationFraction * 100)}`);
}

/** What the `progress` query of shardDataset answers. */
export const ShardProgress = z.strictObject({
  phase: z.enum(['planning', 'writing', 'finalizing', 'done']),
  /** Shards planned (non-empty ones). */
  total: z.int().nonnegative(),
  /** Shards written or found complete, and verified. */
  done: z.int().nonnegative(),
  written: z.int().nonnegative(),
  skipped: z.int().nonnegative(),
  /** Bytes of the shards done. */
  bytes: z.int().nonnegative(),
});
export type ShardProgress = z.infer<typeof ShardProgress>;

export const ShardDatasetResult = z.strictObject({
  manifestUri: ObjectUri,
  outputUri: ObjectUri,
  shards: z.int().nonnegative(),
  samples: z.int().nonnegative(),
  bytes: z.int().nonnegative(),
  /** Shards this run wrote; the rest were already complete from an earlier run. */
  written: z.int().nonnegative(),
  skipped: z.int().nonnegative(),
});
export type ShardDatasetResult = z.infer<typeof ShardDatasetResult>;

// --- Activities: what shardDataset asks of the CPU worker (data-schemas/activity-contract.ts)

/** A small summary of one shard for workflow payloads (the full entry lives in its sidecar). */
export const ShardRef = z.object({ split: Split, index: z.int().nonnegative() });
export type ShardRef = z.infer<typeof ShardRef>;

export const PlanShardsInput = z.object({
  datasetUri: ObjectUri,
  outputUri: ObjectUri,
  seed: ShardPlanKey.shape.seed,
  validationFraction: ShardPlanKey.shape.validationFraction,
  targetShardBytes: ShardPlanKey.shape.targetShardBytes,
  /** Add a `direction` sample per D_lan step (ShardDatasetInput.directionLabels). */
  directionLabels: z.boolean(),
});
export type PlanShardsInput = z.infer<typeof PlanShardsInput>;

export const PlanShardsResult = z.object({
  datasetName: SafeId,
  datasetManifestSha256: Sha256Hex,
  /** The non-empty shards, in plan order. */
  shards: z.array(ShardRef),
  trajectories: z.record(Split, z.int().nonnegative()),
  /** shards.json is already there (and of this source): a finished shard set being re-run. */
  complete: z.boolean(),
});
export type PlanShardsResult = z.infer<typeof PlanShardsResult>;

export const WriteShardResult = z.object({
  path: RelativeRef,
  /** False when the shard was already complete (or matched a fresh build): nothing uploaded. */
  written: z.boolean(),
  /** Set when a shard already written had changed since (size or sha256 differ from its sidecar) and was rewritten. */
  replacedBecause: z.string().optional(),
  bytes: z.int().nonnegative(),
  samples: z.int().nonnegative(),
});
export type WriteShardResult = z.infer<typeof WriteShardResult>;

/** The shard activities: store reads and writes only, on the CPU worker that runs shardDataset. */
export const ShardActivities = activityContract('shard', ['cpu'], {
  /**
   * Reads the D_lan manifest and, the first time, every record, and writes the plan
   * (create-if-absent). Returns only the list of non-empty shards and counts.
   */
  planShards: { input: PlanShardsInput, output: PlanShardsResult },
  /** Writes one shard (then its sidecar) unless it is complete; a changed shard is rewritten. */
  writeShard: { input: ShardRef.extend({ outputUri: ObjectUri }), output: WriteShardResult },
  /** Re-reads shards; any mismatch fails non-retryable, naming the shard. */
  verifyShards: {
    input: z.object({ outputUri: ObjectUri, shards: z.array(ShardRef) }),
    output: z.object({ verified: z.int().nonnegative(), bytes: z.int().nonnegative() }),
  },
  /** Writes `shards.json` last from the plan and the sidecars, create-if-absent. */
  finalizeShards: {
    input: z.object({ outputUri: ObjectUri, datasetUri: ObjectUri }),
    output: z.object({ manifestUri: ObjectUri, shards: z.int().nonnegative(), samples: z.int().nonnegative(), bytes: z.int().nonnegative() }),
  },
});

/** Bad input or output that a retry reads again the same way. */
const SHARD_DATA_ERRORS = [DataErrorCode.DatasetNotFound, DataErrorCode.DatasetInvalid, StoreErrorCode.NotFound, ShardFailure.OutputConflict, ShardFailure.Corrupt];

export const ShardPresets = {
  /**
   * planShards and finalizeShards: the first planShards reads every D_lan record (minutes for 100k
   * trajectories) and heartbeats; finalizeShards reads every sidecar and heartbeats.
   */
  plan: {
    startToCloseTimeout: '1 hour',
    heartbeatTimeout: '2 minutes',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8, nonRetryableErrorTypes: SHARD_DATA_ERRORS },
  },
  /** writeShard and verifyShards: one shard of ~targetShardBytes streamed to or from the store; heartbeats about every second. */
  shard: {
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '2 minutes',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 8, nonRetryableErrorTypes: SHARD_DATA_ERRORS },
  },
} as const satisfies Record<string, ActivityPreset>;
