import { z } from 'zod';
import { ObjectUri, Sha256Hex } from './common';
import { ModelRef } from './bounded';
import { ActivityCancellationType } from '@temporalio/common';
import { activityContract, queueField, TaskQueue, type ActivityPreset } from './activity-contract';
import { ObjectUriField } from './uri';

/**
 * LoRA training (`trainLora`). The shard pipeline (shardDataset's input and result, the shard
 * files, the failure types) is declared in ./shard.ts and re-exported here for the modules that
 * read shards.json or start shardDataset.
 */
export {
  SHARD_FORMAT,
  SHARD_FORMAT_VERSION,
  SHARD_MANIFEST_FILE,
  SHARD_PLAN_FILE,
  ShardEntry,
  ShardFailure,
  ShardManifest,
  ShardSample,
  ShardStage,
  Split,
  shardPath,
  shardSidecarPath,
  ShardDatasetInput,
  ShardDatasetResult,
  ShardProgress,
  defaultShardOutput,
} from './shard';

// ---------------------------------------------------------------------------------------------
// trainLora

export const ActionRepresentation = z.enum(['language', 'action-tokens']);
export type ActionRepresentation = z.infer<typeof ActionRepresentation>;

/** The file beside an action-tokens adapter (and each of its checkpoints) holding its digit mapping. */
export const ACTION_TOKENS_FILE = 'action_tokens.json';

/** Characters an action chunk writes besides digits: a mapped token made only of these could not be told apart. */
const CHUNK_PUNCTUATION = /^[[\](),.\-+\s]*$/;

/** One digit's token: its id in the base model's vocabulary, the vocabulary entry and its decoded text. */
const ActionToken = z.looseObject({
  id: z.int().nonnegative(),
  token: z.string().min(1),
  text: z
    .string()
    .min(1)
    .refine((t) => !/\d/.test(t), 'a mapped token\'s text must contain no digit')
    .refine((t) => !CHUNK_PUNCTUATION.test(t), 'a mapped token\'s text must not be only chunk punctuation or spaces'),
});

/**
 * `action_tokens.json` as python/vla_py/train/action_tokens.py writes it: the digits 0-9 of action
 * chunks written as ten distinct tokens of the base model's vocabulary (the VLM2VLA-AT ablation).
 */
export const ActionTokenMapping = z
  .looseObject({
    method: z.string().min(1),
    digits: z.strictObject({ 0: ActionToken, 1: ActionToken, 2: ActionToken, 3: ActionToken, 4: ActionToken, 5: ActionToken, 6: ActionToken, 7: ActionToken, 8: ActionToken, 9: ActionToken }),
  })
  .superRefine((m, ctx) => {
    const entries = Object.values(m.digits);
    if (new Set(entries.map((e) => e.id)).size !== entries.length) ctx.addIssue({ code: 'custom', path: ['digits'], message: 'two digits share a token id' });
    if (new Set(entries.map((e) => e.text)).size !== entries.length) ctx.addIssue({ code: 'custom', path: ['digits'], message: 'two digits share a token text' });
  });
export type ActionTokenMapping = z.infer<typeof ActionTokenMapping>;

export const DistributedBackend = z.enum(['ddp', 'deepspeed-zero2', 'fsdp']);
export type DistributedBackend = z.infer<typeof DistributedBackend>;

/** Defaults are the paper's configuration (docs/method.md, "Training (LoRA only)"). */
export const TrainLoraInput = z.strictObject({
  /** `shards.json` of a shard set written by shardDataset. */
  shardsUri: ObjectUriField,
  baseModel: ModelRef.describe(
    'A model directory on the GPU worker, a hub id its machine can reach, or an s3:// model directory (staged once per machine); at most 512 characters.',
  ),
  /**
   * Written as `base_model_name_or_path` in the adapter's adapter_config.json and as the model card's
   * `base_model`. The default's hub id comes from a hub cache folder (`models--<org>--<name>/snapshots/<rev>`);
   * the path the trainer loaded stays in `adapter/training_config.json`.
   */
  baseModelName: ModelRef.optional().describe(
    'The base model\'s portable name for the adapter (a hub id); without it, the hub id baseModel is or was downloaded from, else baseModel as given.',
  ),
  /** Where the run writes checkpoints, the adapter and its result. */
  outputUri: ObjectUriField,
  lora: z
    .strictObject({
      rank: z.int().min(1).max(1024).default(16).describe('LoRA rank.'),
      alpha: z.number().positive().default(32).describe('LoRA alpha.'),
      /** @default 0.05 */
      dropout: z.number().min(0).max(0.9).default(0.05),
      /** Module names (suffixes) in the language model; default: every linear layer of the language model, never the vision tower or projector. */
      targetModules: z.array(z.string().regex(/^[A-Za-z0-9_.]{1,200}$/, 'must be 1-200 characters of A-Z a-z 0-9 _ .')).min(1).max(256).optional(),
    })
    .prefault({}),
  learningRate: z.number().positive().max(1).default(5e-5).describe('AdamW learning rate (linear decay).'),
  /** @default 0 */
  warmupSteps: z.int().nonnegative().default(0),
  /** @default 0 */
  weightDecay: z.number().min(0).default(0),
  epochs: z.number().positive().max(100).default(1).describe('Epochs over the training shards.'),
  maxSteps: z.int().positive().optional().describe('Stop after this many optimizer steps (smoke runs); without it the epochs decide.'),
  perDeviceBatchSize: z.int().min(1).max(1024).default(1).describe('Per-device batch size.'),
  gradientAccumulationSteps: z.int().min(1).max(4096).default(1).describe('Gradient accumulation steps.'),
  precision: z.enum(['bf16', 'fp16', 'fp32']).default('bf16').describe('bf16 on GPUs; fp32 is what a CPU runs.'),
  /** Longest tokenized sample; longer ones are cut from the right. @default 2048 */
  maxSequenceLength: z.int().min(16).max(131072).default(2048),
  /** @default 0 */
  seed: z.int().nonnegative().default(0),
  gpus: z.int().min(0).max(64).default(1).describe('GPUs of the worker to use (more than 1 launches with accelerate).'),
  /** Used when gpus > 1. @default 'deepspeed-zero2' */
  distributed: DistributedBackend.default('deepspeed-zero2'),
  checkpointEvery: z.int().min(1).default(500).describe('Optimizer steps between checkpoints.'),
  evalEvery: z
    .int()
    .min(1)
    .optional()
    .describe('Optimizer steps between evaluation losses on the validation shards (checkpointEvery when not given); the last step is always evaluated.'),
  actionRepresentation: ActionRepresentation.default('language').describe('language (VLM2VLA) or action-tokens (the VLM2VLA-AT ablation).'),
  /** Seconds between progress signals to the workflow (heartbeats go out with every step). @default 30 */
  progressEverySeconds: z.number().min(0.1).max(3600).default(30),
  /** The task queue of the GPU workers. @default 'vla-gpu' */
  gpuTaskQueue: queueField('gpu').default(TaskQueue.gpu),
  /** How the training activity is retried when a worker or machine is lost; each attempt resumes from the last checkpoint. */
  retry: z
    .strictObject({
      /** A worker silent this long is presumed lost and the attempt retried elsewhere. @default 300 */
      heartbeatTimeoutSeconds: z.number().min(1).max(86_400).default(300),
      /** @default 5 */
      maxAttempts: z.int().min(1).max(100).default(5),
      /** Wait before the first retry (doubling, at most 10 minutes). @default 30 */
      initialIntervalSeconds: z.number().min(0.1).max(3600).default(30),
    })
    .prefault({}),
});
export type TrainLoraInput = z.infer<typeof TrainLoraInput>;

/** The trainer's progress after each optimizer step (also what metrics.json lists). */
export const TrainerStepEvent = z.object({
  event: z.literal('step'),
  step: z.int().nonnegative(),
  totalSteps: z.int().nonnegative(),
  epoch: z.number(),
  loss: z.number(),
  lr: z.number(),
  tokensPerSecond: z.number(),
  etaSeconds: z.number(),
});
export type TrainerStepEvent = z.infer<typeof TrainerStepEvent>;

/** The loss on the validation shards after an optimizer step (every `evalEvery` steps and at the last). */
export const TrainerEvalEvent = z.object({ event: z.literal('eval'), step: z.int().nonnegative(), loss: z.number() });
export type TrainerEvalEvent = z.infer<typeof TrainerEvalEvent>;

/**
 * One JSON line of the trainer's stdout (python/vla_py/train), parsed by trainLora; the Python tests
 * check what the trainer prints against its JSON Schema (python/vla_py/schemas/trainer-event.schema.json).
 */
export const TrainerEvent = z.discriminatedUnion('event', [
  z.object({ event: z.literal('start'), totalSteps: z.int().nonnegative(), resumedFromStep: z.int().nonnegative(), trainableParameters: z.int().nonnegative(), totalParameters: z.int().nonnegative(), samples: z.int().nonnegative() }),
  TrainerStepEvent,
  z.object({ event: z.literal('checkpoint'), step: z.int().nonnegative(), dir: z.string().min(1) }),
  TrainerEvalEvent,
  z.object({ event: z.literal('done'), step: z.int().nonnegative(), adapterDir: z.string().min(1), metrics: z.record(z.string(), z.number()) }),
  z.object({
    event: z.literal('error'),
    /** base_model_not_found | out_of_memory | corrupt_shard | bad_config | interrupted | crash */
    code: z.string().min(1),
    message: z.string(),
    shard: z.string().optional(),
  }),
]);
export type TrainerEvent = z.infer<typeof TrainerEvent>;

export const TrainingProgress = z.strictObject({
  phase: z.enum(['starting', 'staging', 'training', 'uploading', 'done']),
  attempt: z.int().positive(),
  step: z.int().nonnegative(),
  totalSteps: z.int().nonnegative(),
  loss: z.number().optional(),
  lr: z.number().optional(),
  tokensPerSecond: z.number().optional(),
  etaSeconds: z.number().optional(),
  /** The last validation loss and its step; absent before the first evaluation or without validation shards. */
  evalLoss: z.number().optional(),
  evalStep: z.int().nonnegative().optional(),
  /** false: the shard set has no validation split, so the run trains without evaluation. */
  validation: z.boolean().optional(),
  lastCheckpointStep: z.int().nonnegative().optional(),
  resumedFromStep: z.int().nonnegative().optional(),
});
export type TrainingProgress = z.infer<typeof TrainingProgress>;

export const TrainLoraResult = z.strictObject({
  runUri: ObjectUri,
  /** Directory of the adapter: `PeftModel.from_pretrained(base, <dir>)`, or a vLLM `--lora-modules` path. */
  adapterUri: ObjectUri,
  resultUri: ObjectUri,
  /** The run's TensorBoard event files (`tensorboard --logdir` on a local copy). */
  tensorboardUri: ObjectUri.optional(),
  steps: z.int().nonnegative(),
  finalLoss: z.number().optional(),
  metrics: z.record(z.string(), z.number()),
  gitRevision: z.string(),
  actionRepresentation: ActionRepresentation,
  /** Attempts the run took (1 unless a trainer or worker was lost). */
  attempts: z.int().positive(),
  /** The checkpoint step the last attempt resumed from (0: from scratch). */
  resumedFromStep: z.int().nonnegative(),
});
export type TrainLoraResult = z.infer<typeof TrainLoraResult>;

// ---------------------------------------------------------------------------------------------
// What a training run stores at its outputUri (docs/training.md, "Layout of a run")

/**
 * `config.json` at the run's root, written once by the run's first attempt: the exact input (every
 * default filled), the code revision and the shard set. A later run into the same outputUri with
 * another input or shard set is refused (RunConfigMismatch). Not the trainer's own config: that is
 * TrainerConfig (data-schemas/python-border.ts), which the trainer copies to `adapter/training_config.json`.
 */
export const TrainingRunConfig = z.object({ input: TrainLoraInput, gitRevision: z.string(), shardsManifestSha256: Sha256Hex, createdAt: z.string() });
export type TrainingRunConfig = z.infer<typeof TrainingRunConfig>;

/**
 * Where the trainer writes its TensorBoard event files: a folder of its local output dir, uploaded
 * under the same name to the run's outputUri with every checkpoint and at the end.
 */
export const TENSORBOARD_DIR = 'tensorboard';

/** Where a run's checkpoints go, under its outputUri. */
export const CHECKPOINT_DIR = 'checkpoints';
/** `checkpoint-<step:08d>`: the folder of a checkpoint's files, and with `.json` its marker. */
export const checkpointName = (step: number): string => `checkpoint-${String(step).padStart(8, '0')}`;
/** A checkpoint marker's file name, as listed under `checkpoints/`. */
export const CHECKPOINT_MARKER_NAME = /^checkpoint-\d{8}\.json$/;

/** One uploaded file of a checkpoint or adapter, relative to its folder. */
export const StoredRunFile = z.strictObject({ path: z.string().min(1), sha256: Sha256Hex, bytes: z.int().nonnegative() });
export type StoredRunFile = z.infer<typeof StoredRunFile>;

/**
 * `checkpoints/checkpoint-<step:08d>.json`, written after every file of that checkpoint: only a
 * checkpoint with a marker is resumed from, and each file is checked against its sha256 on the way down.
 */
export const CheckpointMarker = z.strictObject({
  step: z.int().nonnegative(),
  files: z.array(StoredRunFile),
  attempt: z.int().positive(),
  writtenAt: z.string(),
});
export type CheckpointMarker = z.infer<typeof CheckpointMarker>;

/** `metrics.json`: the final attempt's per-step and evaluation events and the trainer's final metrics. */
export const TrainingMetrics = z.strictObject({
  attempt: z.int().positive(),
  final: z.record(z.string(), z.number()),
  steps: z.array(TrainerStepEvent),
  /** The validation losses of the final attempt (absent in runs from before evaluation during training). */
  evals: z.array(TrainerEvalEvent).optional(),
});
export type TrainingMetrics = z.infer<typeof TrainingMetrics>;

/** Signal the training activity sends its workflow with live progress; the workflow's `progress` query returns it. */
export const TRAINING_PROGRESS_SIGNAL = 'trainingProgress';


/** Failure types of `trainLora`; the ones in NON_RETRYABLE_TRAINING_FAILURES fail the workflow at once. */
export const TrainingFailure = {
  baseModelNotFound: 'BaseModelNotFound',
  outOfMemory: 'OutOfGpuMemory',
  corruptShard: 'CorruptShard',
  badConfig: 'BadTrainerConfig',
  runConfigMismatch: 'RunConfigMismatch',
  shardsNotFound: 'ShardsNotFound',
  trainerCrashed: 'TrainerCrashed',
  trainerKilled: 'TrainerKilled',
} as const;

export const NON_RETRYABLE_TRAINING_FAILURES: readonly string[] = [
  TrainingFailure.baseModelNotFound,
  TrainingFailure.outOfMemory,
  TrainingFailure.corruptShard,
  TrainingFailure.badConfig,
  TrainingFailure.runConfigMismatch,
  TrainingFailure.shardsNotFound,
];


// --- Activities (data-schemas/activity-contract.ts)

/** The trainer, on the GPU workers: one activity per run, resumed from the last checkpoint when retried. */
export const TrainingActivities = activityContract('training', ['gpu'], {
  trainLora: { input: TrainLoraInput, output: TrainLoraResult },
});

export const TrainingPresets = {
  /** The training activity, with the run's own retry settings. */
  trainer: (retry: TrainLoraInput['retry']): ActivityPreset => ({
    // A run can take weeks; a lost worker is noticed by the heartbeat timeout instead.
    startToCloseTimeout: '30 days',
    heartbeatTimeout: `${retry.heartbeatTimeoutSeconds} seconds`,
    // Cancellation waits until the trainer has stopped, so the last checkpoint is settled.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: `${retry.initialIntervalSeconds} seconds`,
      backoffCoefficient: 2,
      maximumInterval: '10 minutes',
      maximumAttempts: retry.maxAttempts,
      nonRetryableErrorTypes: [...NON_RETRYABLE_TRAINING_FAILURES],
    },
  }),
} as const;
