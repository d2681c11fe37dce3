import { z } from 'zod';
import { ObjectUri } from './common';
import { ModelRef, TaskQueueName } from './bounded';
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
  shardDatasetWorkflowId,
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
  /** A local directory on the GPU worker or a hub id its machine can reach (at most 512 characters). */
  baseModel: ModelRef,
  /** Where the run writes checkpoints, the adapter and its result. */
  outputUri: ObjectUriField,
  lora: z
    .strictObject({
      /** @default 16 */
      rank: z.int().min(1).max(1024).default(16),
      /** @default 32 */
      alpha: z.number().positive().default(32),
      /** @default 0.05 */
      dropout: z.number().min(0).max(0.9).default(0.05),
      /** Module names (suffixes) in the language model; default: every linear layer of the language model, never the vision tower or projector. */
      targetModules: z.array(z.string().regex(/^[A-Za-z0-9_.]{1,200}$/, 'must be 1-200 characters of A-Z a-z 0-9 _ .')).min(1).max(256).optional(),
    })
    .prefault({}),
  /** AdamW learning rate with linear decay. @default 5e-5 */
  learningRate: z.number().positive().max(1).default(5e-5),
  /** @default 0 */
  warmupSteps: z.int().nonnegative().default(0),
  /** @default 0 */
  weightDecay: z.number().min(0).default(0),
  /** @default 1 */
  epochs: z.number().positive().max(100).default(1),
  /** Stop after this many optimizer steps (smoke runs); default: the epochs decide. */
  maxSteps: z.int().positive().optional(),
  /** @default 1 */
  perDeviceBatchSize: z.int().min(1).max(1024).default(1),
  /** @default 1 */
  gradientAccumulationSteps: z.int().min(1).max(4096).default(1),
  /** `bf16` on GPUs; `fp32` is what a CPU runs. @default 'bf16' */
  precision: z.enum(['bf16', 'fp16', 'fp32']).default('bf16'),
  /** Longest tokenized sample; longer ones are cut from the right. @default 2048 */
  maxSequenceLength: z.int().min(16).max(131072).default(2048),
  /** @default 0 */
  seed: z.int().nonnegative().default(0),
  /** @default 1 */
  gpus: z.int().min(0).max(64).default(1),
  /** Used when gpus > 1. @default 'deepspeed-zero2' */
  distributed: DistributedBackend.default('deepspeed-zero2'),
  /** Optimizer steps between checkpoints. @default 500 */
  checkpointEvery: z.int().min(1).default(500),
  /** `language` (VLM2VLA) or `action-tokens` (the VLM2VLA-AT ablation). @default 'language' */
  actionRepresentation: ActionRepresentation.default('language'),
  /** Seconds between progress signals to the workflow (heartbeats go out with every step). @default 30 */
  progressEverySeconds: z.number().min(0.1).max(3600).default(30),
  /** The task queue of the GPU workers. @default 'vla-gpu' */
  gpuTaskQueue: TaskQueueName.default('vla-gpu'),
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

/** One JSON line of the trainer's stdout (python/vla_py/train). */
export const TrainerEvent = z.discriminatedUnion('event', [
  z.object({ event: z.literal('start'), totalSteps: z.int().nonnegative(), resumedFromStep: z.int().nonnegative(), trainableParameters: z.int().nonnegative(), totalParameters: z.int().nonnegative(), samples: z.int().nonnegative() }),
  z.object({
    event: z.literal('step'),
    step: z.int().nonnegative(),
    totalSteps: z.int().nonnegative(),
    epoch: z.number(),
    loss: z.number(),
    lr: z.number(),
    tokensPerSecond: z.number(),
    etaSeconds: z.number(),
  }),
  z.object({ event: z.literal('checkpoint'), step: z.int().nonnegative(), dir: z.string().min(1) }),
  z.object({ event: z.literal('eval'), step: z.int().nonnegative(), loss: z.number() }),
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
  lastCheckpointStep: z.int().nonnegative().optional(),
  resumedFromStep: z.int().nonnegative().optional(),
});
export type TrainingProgress = z.infer<typeof TrainingProgress>;

export const TrainLoraResult = z.strictObject({
  runUri: ObjectUri,
  /** Directory of the adapter: `PeftModel.from_pretrained(base, <dir>)`, or a vLLM `--lora-modules` path. */
  adapterUri: ObjectUri,
  resultUri: ObjectUri,
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

