import { z } from 'zod';
import { ShardSample, TrainerEvent, TrainLoraInput } from './training';

/**
 * Everything that crosses into the Python side (python/vla_py), declared once here. `npm run schemas`
 * writes each schema of PYTHON_BORDER_SCHEMAS to python/vla_py/schemas/<name>.schema.json (draft-07,
 * what `fastjsonschema` validates); Python validates what it reads against those files and declares
 * no defaults of its own, and TypeScript parses what Python answers with the same zod schemas.
 */

const trainOptions = TrainLoraInput.shape;
const loraOptions = trainOptions.lora.unwrap().shape;

/**
 * The trainer's config file (`trainer-config.json` in the run's work dir, handed to
 * `python -m vla_py.train --config`; the trainer copies it as `adapter/training_config.json`).
 * Every field is required and has no default: the trainLora activity fills each one from the
 * parsed `TrainLoraInput` (whose defaults are the only ones), see `trainerConfigFor`.
 */
export const TrainerConfig = z.strictObject({
  /** A local model directory (an s3:// base model is staged first) or a hub id. */
  baseModel: z.string().min(1),
  /** The base model's portable name for adapter_config.json (see TrainLoraInput.baseModelName). */
  baseModelName: z.string().min(1),
  trainShards: z.array(z.string().min(1)).min(1),
  validationShards: z.array(z.string().min(1)),
  /** The trainer's local output: checkpoints/ and adapter/. */
  outputDir: z.string().min(1),
  /** A local checkpoint directory to resume from, or null to start fresh. */
  resumeFrom: z.string().min(1).nullable(),
  lora: z.strictObject({
    rank: loraOptions.rank.unwrap(),
    alpha: loraOptions.alpha.unwrap(),
    dropout: loraOptions.dropout.unwrap(),
    /** null: every linear layer of the language model. */
    targetModules: loraOptions.targetModules.unwrap().nullable(),
  }),
  learningRate: trainOptions.learningRate.unwrap(),
  warmupSteps: trainOptions.warmupSteps.unwrap(),
  weightDecay: trainOptions.weightDecay.unwrap(),
  epochs: trainOptions.epochs.unwrap(),
  /** null: the epochs decide. */
  maxSteps: trainOptions.maxSteps.unwrap().nullable(),
  perDeviceBatchSize: trainOptions.perDeviceBatchSize.unwrap(),
  gradientAccumulationSteps: trainOptions.gradientAccumulationSteps.unwrap(),
  precision: trainOptions.precision.unwrap(),
  maxSequenceLength: trainOptions.maxSequenceLength.unwrap(),
  seed: trainOptions.seed.unwrap(),
  checkpointEvery: trainOptions.checkpointEvery.unwrap(),
  /** Steps between validation losses (ignored without validation shards). */
  evalEvery: trainOptions.evalEvery.unwrap(),
  actionRepresentation: trainOptions.actionRepresentation.unwrap(),
  gpus: trainOptions.gpus.unwrap(),
  distributed: trainOptions.distributed.unwrap(),
  /** What the adapter's README.md names: the run, its shards, the code revision and the base model as given. */
  modelCard: z.strictObject({ runUri: z.string().min(1), shardsUri: z.string().min(1), gitRevision: z.string(), baseModel: z.string().min(1) }),
});
export type TrainerConfig = z.infer<typeof TrainerConfig>;

/** Most tokens one local inference request may generate. */
export const MAX_NEW_TOKENS_LIMIT = 4096;

/**
 * One request line on the local inference server's stdin (python -m vla_py.infer, driven by
 * activities/vqa/backends/local.ts). Every field is written; nothing is defaulted on the Python side.
 */
export const InferenceRequestLine = z.strictObject({
  id: z.string().min(1),
  prompt: z.string().min(1),
  /** Image bytes, base64 (standard alphabet, padded). */
  images: z.array(z.string()),
  maxNewTokens: z.int().min(1).max(MAX_NEW_TOKENS_LIMIT),
  /** 0: greedy. */
  temperature: z.number().min(0).max(2),
  /** null: no nucleus cut. */
  topP: z.number().gt(0).max(1).nullable(),
  /** Answer the generated tokens' log-probabilities too. */
  logprobs: z.boolean(),
  /** Decode the adapter's action-token ids back to digits (VLM2VLA-AT action chunks). */
  actionTokens: z.boolean(),
});
export type InferenceRequestLine = z.infer<typeof InferenceRequestLine>;

const InferenceErrorBody = z.object({ code: z.string(), message: z.string() });

/** The server's first line once the model is loaded. */
export const InferenceReadyLine = z.looseObject({ ready: z.literal(true), model: z.string(), adapter: z.string().nullable(), device: z.string(), dtype: z.string() });
export type InferenceReadyLine = z.infer<typeof InferenceReadyLine>;
/** The server's first (and last) line when the model could not be loaded. */
export const InferenceNotReadyLine = z.object({ ready: z.literal(false), error: InferenceErrorBody });
/** One answered request. */
export const InferenceAnswerLine = z.object({
  id: z.string(),
  text: z.string(),
  inputTokens: z.int().nonnegative(),
  outputTokens: z.int().nonnegative(),
  batchSize: z.int().positive(),
  /** Generation reached maxNewTokens without an end-of-sequence token. */
  truncated: z.boolean(),
  logprobs: z.array(z.number()).optional(),
});
export type InferenceAnswerLine = z.infer<typeof InferenceAnswerLine>;
/** A request that could not be served (id null when the line had no usable id). */
export const InferenceErrorLine = z.object({ id: z.string().nullable(), error: InferenceErrorBody });
/** Any line on the local inference server's stdout. */
export const InferenceResponseLine = z.union([InferenceReadyLine, InferenceNotReadyLine, InferenceAnswerLine, InferenceErrorLine]);

/**
 * One request line on the WidowX driver's stdin (python -m vla_py.widowx, driven by
 * activities/robot/station/widowx-envs.ts). `connect` does agentlace's handshake and widowx_envs'
 * `init`; `reset`, `observe` and `step` answer with an observation (docs/station-protocol.md).
 */
export const WidowXDriverRequest = z.discriminatedUnion('op', [
  z.strictObject({
    id: z.string().min(1),
    op: z.literal('connect'),
    host: z.string().min(1),
    port: z.int().min(1).max(65_534),
    /** How long each request waits for its answer, milliseconds. */
    timeoutMs: z.int().positive(),
    /** How long `init` may take (the first one starts the arm's controller: ~10 s). */
    initTimeoutMs: z.int().positive(),
    imageSize: z.int().min(16).max(2048),
    /** The observation key whose image is the frame: `image` (arrays) or `full_image` (JPEG). */
    cameraKey: z.string().min(1),
    /** widowx_envs' env_params, sent with `init` as they are. */
    envParams: z.record(z.string(), z.unknown()),
  }),
  z.strictObject({ id: z.string().min(1), op: z.literal('reset') }),
  z.strictObject({ id: z.string().min(1), op: z.literal('observe') }),
  z.strictObject({
    id: z.string().min(1),
    op: z.literal('step'),
    /** widowx_envs' 7-D step: [dx, dy, dz, droll, dpitch, dyaw, gripper], meters and radians, gripper absolute. */
    action: z.tuple([z.number(), z.number(), z.number(), z.number(), z.number(), z.number(), z.number()]),
  }),
]);
export type WidowXDriverRequest = z.infer<typeof WidowXDriverRequest>;

/** The driver's observation: the camera frame re-encoded as a JPEG of imageSize², and the state. */
export const WidowXDriverObservation = z.object({
  imageJpegB64: z.base64().min(4),
  width: z.int().positive(),
  height: z.int().positive(),
  state: z.array(z.number()).length(7),
});
const WidowXDriverError = z.object({ code: z.string(), message: z.string() });
/** Any line on the WidowX driver's stdout: one answer per request, by id (null when the line had none). */
export const WidowXDriverAnswer = z.union([
  z.object({ id: z.string().nullable(), connected: z.literal(true) }),
  z.object({ id: z.string().nullable(), observation: WidowXDriverObservation }),
  z.object({ id: z.string().nullable(), error: WidowXDriverError }),
]);
export type WidowXDriverAnswer = z.infer<typeof WidowXDriverAnswer>;

/** The schemas written to python/vla_py/schemas/<name>.schema.json, by file name. */
export const PYTHON_BORDER_SCHEMAS = {
  'trainer-config': TrainerConfig,
  'trainer-event': TrainerEvent,
  'shard-sample': ShardSample,
  'inference-request': InferenceRequestLine,
  'inference-response': InferenceResponseLine,
  'widowx-request': WidowXDriverRequest,
} as const;
export type PythonBorderSchemaName = keyof typeof PYTHON_BORDER_SCHEMAS;

/** Where PYTHON_BORDER_SCHEMAS go, relative to the repository root. */
export const PYTHON_SCHEMA_DIR = 'python/vla_py/schemas';

/**
 * A border schema as JSON Schema draft-07. `io: 'output'`: what is written to (or by) Python, after
 * every zod default is applied, so no `default` reaches Python as a second source of defaults.
 */
export function pythonJsonSchemaOf(name: PythonBorderSchemaName): string {
  const schema = z.toJSONSchema(PYTHON_BORDER_SCHEMAS[name], { target: 'draft-07', io: 'output' });
  return `${JSON.stringify({ $id: `vla-pipelines/python/${name}.schema.json`, ...schema }, null, 2)}\n`;
}
