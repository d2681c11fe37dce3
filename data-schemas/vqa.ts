import { z } from 'zod';
import { Finite, ObjectUri, RelativeRef } from './common';
import { ModelRef, boundedName } from './bounded';
import { activityContract, queueField, TaskQueue, type ActivityPreset, type QueueOf } from './activity-contract';
import { ObjectUriField, objectUriRoot } from './uri';

/**
 * VQA retention (docs/method.md, "VQA retention"): the twelve benchmarks of the paper's Table 1, one item
 * format they all load into, the predictions a model makes on them, and the scores.
 */

export const BenchmarkId = z.enum([
  'mmmu',
  'mmstar',
  'mme',
  'ocrbench',
  'mmbench-en',
  'mmbench-cn',
  'textvqa',
  'docvqa',
  'infovqa',
  'ai2d',
  'chartqa',
  'realworldqa',
]);
export type BenchmarkId = z.infer<typeof BenchmarkId>;

/** One option of a multiple-choice item: its letter and text. */
export const ChoiceOption = z.strictObject({ label: z.string().regex(/^[A-Z]$/), text: z.string() });
export type ChoiceOption = z.infer<typeof ChoiceOption>;

/**
 * One benchmark item, whatever the benchmark's own release looks like (each loader maps its
 * release to this). Images are paths relative to the benchmark's root.
 */
export const VqaItem = z.strictObject({
  /** Unique within the benchmark; part of the prediction's object key. */
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
  benchmark: BenchmarkId,
  question: z.string().min(1),
  /** Context shown before the question (MMBench's hint). */
  hint: z.string().optional(),
  /** Multiple-choice options, in the release's order. */
  options: z.array(ChoiceOption).optional(),
  images: z.array(RelativeRef).min(1),
  /**
   * Reference answers: the option letter for multiple choice, "yes"/"no" for MME, the 10 human
   * answers for TextVQA, every accepted answer for DocVQA/InfoVQA/OCRBench/ChartQA.
   */
  answers: z.array(z.string()).min(1),
  /** Scorer inputs beyond the answers: category (MMStar, MMBench), subtask (MME), questionType (MMMU: multiple-choice | open), circular group (MMBench: the source question index), lang. */
  meta: z.record(z.string(), z.union([z.string(), Finite])).default({}),
});
export type VqaItem = z.infer<typeof VqaItem>;

/** Decoding of one benchmark: greedy, short answers (lmms-eval's defaults per task). */
export const GenerationSettings = z.strictObject({
  maxNewTokens: z.int().positive(),
  temperature: z.number().min(0).max(2),
  topP: z.number().gt(0).max(1).optional(),
});
export type GenerationSettings = z.infer<typeof GenerationSettings>;

/** What a backend is asked: one user turn with the item's images and the prompt text. */
export interface VqaRequest {
  prompt: string;
  images: { mimeType: string; data: Uint8Array }[];
  generation: GenerationSettings;
  /**
   * Constrain the answer to this JSON Schema where the backend can (`InferenceBackend.structuredOutput`):
   * vLLM's guided decoding via `response_format`, Gemini's `responseJsonSchema`. Others ignore it.
   */
  jsonSchema?: { name: string; schema: Record<string, unknown> };
  /**
   * Decode the answer's action-token ids back to digits with the adapter's action_tokens.json, where
   * the backend can (`InferenceBackend.decodesActionTokens`: the local backend). Others ignore it.
   */
  actionTokens?: boolean;
}

/**
 * A model under evaluation and how to reach it. Secrets (API keys) never appear here: the worker
 * that calls the backend reads them from its environment.
 */
/** A model's label in a sweep: names reports, object keys and child workflow ids. */
const ModelName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ - and start with a letter or digit');

export const ModelSpec = z.discriminatedUnion('backend', [
  z.strictObject({
    /** Label in reports and object keys. */
    name: ModelName,
    /** An OpenAI-compatible chat completions server (vLLM serves a base model and its LoRA adapters by name). */
    backend: z.literal('openai'),
    baseUrl: z.url().max(1024),
    /** The served model name; for a vLLM LoRA adapter, the adapter's name. */
    model: boundedName(256),
    /** For retention: the `name` of this model's base in the same sweep. */
    baseOf: ModelName.optional(),
  }),
  z.strictObject({
    name: ModelName,
    backend: z.literal('gemini'),
    model: boundedName(256),
    /**
     * Thinking tokens allowed on thinking models (Gemini 2.5 and later), on top of the answer's own
     * budget: their output limit counts thoughts, which would otherwise eat short answers. 0 turns
     * thinking off where the model allows it (not on Pro). @default 1024
     */
    thinkingBudget: z.int().min(0).max(32_768).optional(),
    baseOf: ModelName.optional(),
  }),
  z.strictObject({
    name: ModelName,
    /** transformers + peft in the project's Python environment, as a child process. */
    backend: z.literal('local'),
    /** A model directory on the worker (or a hub id its machine can reach). */
    baseModel: ModelRef,
    /** A LoRA adapter directory or object URI (`PeftModel.from_pretrained`); absent: the base model. */
    adapter: ModelRef.optional(),
    baseOf: ModelName.optional(),
  }),
]);
export type ModelSpec = z.infer<typeof ModelSpec>;

/**
 * What a prediction depends on besides the item: the model behind the name (backend, base model
 * identity, adapter content hash). Computed by the worker that serves the model (checkBackend).
 */
export const ModelIdentity = z.discriminatedUnion('backend', [
  z.strictObject({ backend: z.literal('openai'), baseUrl: z.string(), model: z.string() }),
  /** thinkingBudget null: the backend's default. */
  z.strictObject({ backend: z.literal('gemini'), model: z.string(), thinkingBudget: z.int().nullable() }),
  z.strictObject({
    backend: z.literal('local'),
    /** `sha256:<hex>` of a model directory's files, or `hub:<id>` for a hub id. */
    baseModel: z.string(),
    /** `sha256:<hex>` of the adapter directory's files; null: the base model alone. */
    adapter: z.string().nullable(),
  }),
]);
export type ModelIdentity = z.infer<typeof ModelIdentity>;

/** The model's identity and its hash, the `modelKey` every prediction key starts from. */
export const ResolvedModel = z.strictObject({ identity: ModelIdentity, modelKey: z.string().regex(/^[0-9a-f]{64}$/) });
export type ResolvedModel = z.infer<typeof ResolvedModel>;

/**
 * One stored prediction: `<sweep>/predictions/<model>/<benchmark>/<item id>.<key>.json`. The key is
 * a hash of everything that made the answer (model identity, prompt text, generation settings, the
 * item's content), so a stored answer is reused only for the very same question to the very same model.
 */
export const VqaPrediction = z.strictObject({
  itemId: z.string(),
  benchmark: BenchmarkId,
  model: z.string(),
  /** The prediction key (in the object name). */
  key: z.string(),
  modelKey: z.string(),
  itemSha256: z.string(),
  generation: GenerationSettings,
  prompt: z.string(),
  response: z.string(),
  /** The answer stopped at generation.maxNewTokens: scored as wrong and counted. */
  truncated: z.boolean(),
  /** The provider withheld the answer (a safety or recitation block), with its reason: scored as wrong and counted. */
  withheld: z.string().optional(),
  latencyMs: z.number().nonnegative(),
  usage: z.strictObject({ inputTokens: z.int().nonnegative(), outputTokens: z.int().nonnegative() }).optional(),
});
export type VqaPrediction = z.infer<typeof VqaPrediction>;

/** A benchmark's score on the scale of the paper's Table 1, plus its breakdown. */
export const BenchmarkScore = z.strictObject({
  benchmark: BenchmarkId,
  /** The headline figure: accuracy in % for most; MME perception (max 2000); OCRBench hits / 10 (Table 1's 75.0 is 750 of 1000). */
  value: Finite,
  /** Name of the headline metric, e.g. `accuracy`, `circular accuracy`, `ANLS`, `perception`. */
  metric: z.string(),
  items: z.int().nonnegative(),
  /** Further figures: per category, cognition and total for MME, non-circular accuracy for MMBench, ... */
  breakdown: z.record(z.string(), Finite).default({}),
});
export type BenchmarkScore = z.infer<typeof BenchmarkScore>;

/**
 * A benchmark's score as the sweep stores and reports it (`scores/<model>/<benchmark>.json`): the
 * scorer's BenchmarkScore with its standard error and the answers that were truncated or missing.
 */
export const BenchmarkResult = BenchmarkScore.extend({
  /**
   * Standard error of `value`, on its scale, as lmms-eval computes it: sample standard deviation /
   * sqrt(n) for a mean over items, the standard deviation over bootstrap resamples of the items otherwise.
   */
  stderr: Finite,
  stderrMethod: z.enum(['mean', 'bootstrap']),
  /** Answers that stopped at the token limit; scored as wrong. */
  truncated: z.int().nonnegative(),
  /** Answers the provider withheld (safety, recitation), scored as wrong. */
  withheld: z.int().nonnegative().default(0),
  /** Items without a stored prediction (scored as wrong); 0 after a finished sweep. */
  missing: z.int().nonnegative(),
});
export type BenchmarkResult = z.infer<typeof BenchmarkResult>;

/** Where a benchmark's data lies: a directory or object prefix in the layout its loader documents. */
export const BenchmarkSource = z.strictObject({
  benchmark: BenchmarkId,
  uri: ObjectUriField,
});
export type BenchmarkSource = z.infer<typeof BenchmarkSource>;

/** The paper's Table 1 (docs/method.md), for the report: Gemma-3-12B-IT base and VLM2VLA (LoRA). */
export const PAPER_TABLE_1: Record<'base' | 'vlm2vla', Record<BenchmarkId, number>> = {
  base: { mmmu: 46.0, mmstar: 46.3, mme: 1182.3, ocrbench: 75.0, 'mmbench-en': 76.9, 'mmbench-cn': 74.7, textvqa: 68.9, docvqa: 80.6, infovqa: 50.4, ai2d: 78.5, chartqa: 55.1, realworldqa: 50.6 },
  vlm2vla: { mmmu: 42.7, mmstar: 48.0, mme: 1391.7, ocrbench: 63.9, 'mmbench-en': 68.5, 'mmbench-cn': 67.6, textvqa: 64.9, docvqa: 78.4, infovqa: 46.2, ai2d: 74.0, chartqa: 58.3, realworldqa: 43.3 },
};

/** The paper's claim: a fine-tuned model keeps over 85% of its base's scores. */
export const RETENTION_THRESHOLD = 0.85;

/** The retention threshold of an input (a fraction: 0.85 is 85%). */
const RetentionThreshold = z.number().positive();

/**
 * The kind of worker that serves each backend's inference: an OpenAI-compatible server is reached
 * over HTTP from the CPU workers, Gemini calls go through the rate-limited Gemini queue, local
 * inference needs the GPU workers' Python environment.
 */
export const BACKEND_WORKER = { openai: 'cpu', gemini: 'gemini', local: 'gpu' } as const satisfies Record<ModelSpec['backend'], 'cpu' | 'gemini' | 'gpu'>;
export type BackendWorker = typeof BACKEND_WORKER;

/** Each backend's task queue, typed by the kind of worker that polls it. */
export type BackendQueues = { [B in keyof BackendWorker]: QueueOf<BackendWorker[B]> };

/** What a sweep appends to its outputUri for its children's `itemsUri`: `/items/<benchmark, <= 11>/<set, 16>` and room to spare. */
const VQA_SWEEP_URI_RESERVE = 64;

export const VqaSweepInput = z
  .strictObject({
    models: z.array(ModelSpec).min(1),
    /** Each benchmark and where its data lies (docs/vqa.md gives the layouts). */
    benchmarks: z.array(BenchmarkSource).min(1),
    /** Where items, predictions, scores and the report go. */
    outputUri: objectUriRoot(VQA_SWEEP_URI_RESERVE, '/items/<benchmark>/<set>'),
    /** Smoke runs: at most this many questions per benchmark (MMBench rotations and MME image pairs stay whole). */
    limit: z.int().positive().optional(),
    /** Requests in flight per (model, benchmark) child; a server sees this times the children of its model running at once. @default 8 */
    concurrency: z.int().min(1).max(256).default(8),
    /**
     * Items per prediction activity (each heartbeats per item). The request pool drains at each
     * batch's end, so batches much larger than `concurrency` keep it full. @default 32 x concurrency
     */
    batchSize: z.int().min(1).max(10_000).optional(),
    /** (model, benchmark) children running at once. @default 2 */
    maxConcurrentEvaluations: z.int().min(1).max(64).default(2),
    /** Retention below this (fine-tuned / base, a fraction) is flagged in the report. @default 0.85 */
    retentionThreshold: RetentionThreshold.optional(),
    /** Task queue per backend: local inference needs the GPU workers (Python env), Gemini its rate-limited queue. */
    taskQueues: z
      .strictObject({
        openai: queueField(BACKEND_WORKER.openai).default(TaskQueue.cpu),
        gemini: queueField(BACKEND_WORKER.gemini).default(TaskQueue.gemini),
        local: queueField(BACKEND_WORKER.local).default(TaskQueue.gpu),
      })
      .prefault({}),
    /**
     * After this many seconds, and while no worker polls a backend's task queue, the sweep says so
     * (warning log, `waitingOn` in the progress query, search attribute VlaWaitingOn); it keeps waiting. @default 60
     */
    noWorkerWarningSeconds: z.number().positive().max(86_400).optional(),
  })
  .superRefine((input, ctx) => {
    const names = input.models.map((m) => m.name);
    names.forEach((name, i) => {
      if (names.indexOf(name) !== i) ctx.addIssue({ code: 'custom', path: ['models', i, 'name'], message: `duplicate model name ${name}` });
    });
    input.models.forEach((m, i) => {
      if (m.baseOf !== undefined && !names.includes(m.baseOf)) {
        ctx.addIssue({ code: 'custom', path: ['models', i, 'baseOf'], message: `no model named ${m.baseOf} in this sweep (baseOf names the base model's "name")` });
      }
    });
    const benchmarks = input.benchmarks.map((b) => b.benchmark);
    benchmarks.forEach((b, i) => {
      if (benchmarks.indexOf(b) !== i) ctx.addIssue({ code: 'custom', path: ['benchmarks', i, 'benchmark'], message: `benchmark ${b} listed twice` });
    });
  });
export type VqaSweepInput = z.infer<typeof VqaSweepInput>;
/** What a client sends (defaults may be left out; queue names are plain strings). */
export type VqaSweepInputRaw = z.input<typeof VqaSweepInput>;
/** What a workflow hands a child vqaSweep: its queues keep their worker kind, so a Gemini queue cannot go to the local backend. */
export type VqaSweepRequest = Omit<VqaSweepInputRaw, 'taskQueues'> & { taskQueues?: Partial<BackendQueues> };

export const VqaEvaluateInput = z.strictObject({
  outputUri: ObjectUriField,
  /** The benchmark's materialised item set (prepareBenchmark's `itemsUri`). */
  itemsUri: ObjectUriField,
  model: ModelSpec,
  /** checkBackend's hash of the model's identity; a worker serving another model refuses. */
  modelKey: z.string().regex(/^[0-9a-f]{64}$/),
  benchmark: BenchmarkId,
  concurrency: z.int().min(1).max(256),
  batchSize: z.int().min(1).max(10_000),
  /** The model's backend queue (the sweep's `taskQueues` entry for its backend). */
  taskQueue: queueField(BACKEND_WORKER.openai, BACKEND_WORKER.gemini, BACKEND_WORKER.local),
});
export type VqaEvaluateInput = z.infer<typeof VqaEvaluateInput>;

/** A 95% interval [low, high]. */
export const Interval = z.tuple([Finite, Finite]);
export type Interval = z.infer<typeof Interval>;

export const RetentionGate = z.enum(['passed', 'failed']);
export type RetentionGate = z.infer<typeof RetentionGate>;

export const Retention = z.strictObject({
  model: z.string(),
  base: z.string(),
  /** fine-tuned / base per benchmark (1 = kept everything). */
  perBenchmark: z.record(z.string(), Finite),
  /** Paired bootstrap 95% interval of each ratio, over the items both models answered. */
  perBenchmarkInterval: z.record(z.string(), Interval),
  /** Items both models answered, per benchmark (the bootstrap's sample). */
  pairedItems: z.record(z.string(), z.int().nonnegative()),
  /** Mean of the per-benchmark ratios; 0 when there is none (nothing measured is no evidence of retention). */
  overall: Finite,
  /** Paired bootstrap 95% interval of `overall` (every benchmark resampled in each round). */
  overallInterval: Interval,
  /** The threshold the flags use. */
  threshold: Finite,
  /** Benchmarks under the threshold. */
  below: z.array(BenchmarkId),
  /** Benchmarks on which the base scored 0: no retention to measure, so left out of `perBenchmark` and `overall`. */
  baseScoredZero: z.array(BenchmarkId).default([]),
  /** The retention gate: `passed` when some retention was measured and `overall` is at or above `threshold`. */
  gate: RetentionGate,
});
export type Retention = z.infer<typeof Retention>;

export const VqaSweepResult = z.strictObject({
  outputUri: ObjectUri,
  /** scores[model][benchmark] */
  scores: z.record(z.string(), z.record(z.string(), BenchmarkResult)),
  retention: z.array(Retention),
  reportUri: ObjectUri,
  chartUri: ObjectUri,
  /** Each benchmark's materialised item set (`items/<benchmark>/<set>`), the items its scores are over. */
  itemSets: z.record(z.string(), ObjectUri),
  /** Predictions this sweep made, those it reused from the store, and the truncated and withheld answers among all scored. */
  predictions: z.strictObject({ made: z.int().nonnegative(), reused: z.int().nonnegative(), truncated: z.int().nonnegative(), withheld: z.int().nonnegative().default(0) }),
  /** lmms-eval's files of each model (docs/vqa.md, "lmms-eval result files"): its `<date>_results.json` and, per benchmark, `<date>_samples_<task>.jsonl`. */
  lmmsEval: z.record(z.string(), z.strictObject({ results: ObjectUri, samples: z.partialRecord(BenchmarkId, ObjectUri) })).default({}),
});
export type VqaSweepResult = z.infer<typeof VqaSweepResult>;

/** The nightly evaluation (a Temporal Schedule starts it): the newest trained adapter against its base. */
export const NightlyEvaluationInput = z.strictObject({
  /** Where training runs live: every `<runsUri>/<run>/result.json` is a finished trainLora run. */
  runsUri: ObjectUriField,
  /** Each night's sweep goes to `<outputUri>/runs/<run>`; `<outputUri>/last.json` remembers what was evaluated. */
  outputUri: objectUriRoot(VQA_SWEEP_URI_RESERVE + 70, '/runs/<run>/items/<benchmark>/<set>'),
  benchmarks: z.array(BenchmarkSource).min(1),
  limit: z.int().positive().optional().describe('Smoke runs: at most this many questions per benchmark (MMBench rotations and MME image pairs stay whole).'),
  concurrency: z.int().min(1).max(256).default(4),
  /** Task queue of the local inference (the GPU workers). @default 'vla-gpu' */
  localTaskQueue: queueField(BACKEND_WORKER.local).default(TaskQueue.gpu),
  /** The retention gate: overall retention below this (a fraction) fails it. @default 0.85 */
  retentionThreshold: RetentionThreshold.optional(),
});
export type NightlyEvaluationInput = z.infer<typeof NightlyEvaluationInput>;
/** What a client (the Schedule, the CLI) sends. */
export type NightlyEvaluationInputRaw = z.input<typeof NightlyEvaluationInput>;

export const NightlyEvaluationResult = z.strictObject({
  status: z.enum(['evaluated', 'no-new-checkpoint', 'no-runs']),
  run: z.string().optional(),
  adapterUri: ObjectUri.optional(),
  reportUri: ObjectUri.optional(),
  overallRetention: Finite.optional(),
  /**
   * The retention gate of an evaluated night: `failed` when overall retention is below the threshold.
   * Also the search attribute VlaRetentionGate, for Web UI filters and alerts (docs/vqa.md).
   */
  retentionGate: RetentionGate.optional(),
  retentionThreshold: Finite.optional(),
});
export type NightlyEvaluationResult = z.infer<typeof NightlyEvaluationResult>;

// ---------------------------------------------------------------------------------------------
// Inference backend failures (activities/vqa/backends/errors.ts throws them)

/** Failure types of the sweep's own activities (the backends' are BACKEND_FAILURE_TYPES below); none heals by retrying. */
export const VqaFailure = {
  /** Thrown when a benchmark's files do not follow the layout its loader expects, or an item is not in the item set. */
  benchmarkLayout: 'BenchmarkLayout',
  /** Thrown when a model fails its check before the sweep (its server does not answer as the backend should). */
  backendCheck: 'BackendCheckFailed',
  /** Thrown when the model behind a name changed (another adapter content) after the sweep checked it. */
  modelChanged: 'VqaModelChanged',
} as const;

export const BackendErrorCode = ['unreachable', 'auth', 'not_found', 'bad_request', 'rate_limited', 'quota_exhausted', 'server', 'adapter_mismatch', 'malformed', 'content_blocked'] as const;
export type BackendErrorCode = (typeof BackendErrorCode)[number];

/** The ApplicationFailure `type` of each code (what a retry policy's nonRetryableErrorTypes would name). */
export const BACKEND_FAILURE_TYPES: Readonly<Record<BackendErrorCode, string>> = {
  unreachable: 'VqaBackendUnreachable',
  auth: 'VqaBackendAuth',
  not_found: 'VqaBackendNotFound',
  bad_request: 'VqaBackendBadRequest',
  rate_limited: 'VqaBackendRateLimited',
  quota_exhausted: 'VqaBackendQuotaExhausted',
  server: 'VqaBackendServer',
  adapter_mismatch: 'VqaBackendAdapterMismatch',
  malformed: 'VqaBackendMalformed',
  content_blocked: 'VqaBackendContentBlocked',
};

/**
 * Whether Temporal should retry: transport failures, rate limits, server errors and answers that could
 * not be read may heal; wrong credentials, an unknown model, a rejected request, an adapter made for
 * another base model, a per-day quota spent until its reset and an answer the provider withholds
 * (Gemini's safety and recitation filters) cannot.
 */
export const RETRYABLE_BACKEND_ERRORS: ReadonlySet<BackendErrorCode> = new Set<BackendErrorCode>(['unreachable', 'rate_limited', 'server', 'malformed']);

/** Codes after which a whole evaluation should stop rather than fail every item one by one. */
export const FATAL_BACKEND_ERRORS: ReadonlySet<BackendErrorCode> = new Set<BackendErrorCode>(['auth', 'not_found', 'bad_request', 'adapter_mismatch', 'quota_exhausted']);


// ---------------------------------------------------------------------------------------------
// Store files the VQA pipeline writes and reads back (activities/vqa/activities.ts and nightly.ts)

/** File names under a sweep's item set (`items/<benchmark>/<set>/`), its root and the nightly root. */
export const VqaStoreFile = {
  /** One VqaItem per line. */
  items: 'items.jsonl',
  /** ItemHashes; written after items.jsonl, so its presence means the item set is complete. */
  itemHashes: 'item-sha256.json',
  /** The sweep's VqaSweepResult, written last. */
  report: 'report.json',
  /** The nightly root's NightlyState: the run evaluated last. */
  nightlyState: 'last.json',
  /** The nightly root's folder of NightRecords, `nights/<date>.json`. */
  nights: 'nights',
} as const;

/** `item-sha256.json`: each item's content hash (its fields and image bytes), by item id. */
export const ItemHashes = z.record(z.string(), z.string());
export type ItemHashes = z.infer<typeof ItemHashes>;

/** The newest finished training run under a nightly's runsUri. */
export const NewestRun = z.strictObject({
  /** The run's folder name under runsUri. */
  run: z.string(),
  resultUri: ObjectUri,
  /** Changes when the run's result is rewritten (a re-trained run at the same output). */
  resultEtag: z.string(),
  adapterUri: ObjectUri,
  baseModel: z.string(),
  finishedAt: z.string(),
});
export type NewestRun = z.infer<typeof NewestRun>;

/** `last.json`: the run the nightly evaluation evaluated last; a night whose newest run matches ends at once. */
export const NightlyState = z.strictObject({
  resultUri: ObjectUri,
  resultEtag: z.string(),
  reportUri: ObjectUri,
  evaluatedAt: z.string(),
});
export type NightlyState = z.infer<typeof NightlyState>;

/** A night as `nights/<night>.json` records it. */
const NightDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD');
const NightStatus = NightlyEvaluationResult.shape.status;

/** `nights/<night>.json`: what one night did. */
export const NightRecord = z.strictObject({
  night: NightDate,
  status: NightStatus,
  run: z.string().optional(),
  recordedAt: z.iso.datetime({ offset: true }),
});
export type NightRecord = z.infer<typeof NightRecord>;

// ---------------------------------------------------------------------------------------------
// Activities: what the VQA workflows ask of the workers (data-schemas/activity-contract.ts)

/** What names one (model, benchmark)'s predictions: the sweep, the item set, the model's name and key. */
const PredictionScope = {
  outputUri: ObjectUri,
  itemsUri: ObjectUri,
  model: ModelName,
  modelKey: ResolvedModel.shape.modelKey,
  benchmark: BenchmarkId,
};

/** The sweep's store work, on the CPU worker that runs the VQA workflows. */
export const VqaStoreActivities = activityContract('VQA (store)', ['cpu'], {
  /**
   * Loads a benchmark from the user's layout and materialises it into the item set of this source
   * (its URI and the listing under it) and `limit`; an item set already written is reused.
   */
  prepareBenchmark: {
    input: z.object({ source: BenchmarkSource, outputUri: ObjectUri, limit: z.int().positive().optional() }),
    output: z.object({ benchmark: BenchmarkId, items: z.int().nonnegative(), itemsUri: ObjectUri }),
  },
  /** Item ids of a benchmark that still lack a prediction of this model under their current key. */
  pendingItems: {
    input: z.object(PredictionScope),
    output: z.object({ pending: z.array(VqaItem.shape.id), total: z.int().nonnegative() }),
  },
  /** Scores a (model, benchmark) from its stored predictions, with the standard error and the truncated answers, and stores the score. */
  scoreBenchmark: { input: z.object(PredictionScope), output: BenchmarkResult },
  /** report.json, report.html (self-contained) and chart.png (Chromium's rendering of its chart). */
  writeReport: {
    input: z.object({
      outputUri: ObjectUri,
      title: z.string(),
      models: z.array(ModelSpec),
      benchmarks: z.array(BenchmarkId),
      made: z.int().nonnegative(),
      reused: z.int().nonnegative(),
      /** checkBackend's key of each model, by name. */
      modelKeys: z.record(z.string(), ResolvedModel.shape.modelKey),
      /** prepareBenchmark's item set of each benchmark. */
      itemsUris: z.partialRecord(BenchmarkId, ObjectUri),
      retentionThreshold: RetentionThreshold,
      /** The sweep's `limit`, recorded in the lmms-eval results' `config`. */
      limit: z.int().positive().optional(),
    }),
    output: VqaSweepResult,
  },
});

/**
 * Model calls, on the queue of the model's backend (BACKEND_WORKER): the CPU workers serve the
 * OpenAI-compatible servers, the Gemini worker Gemini, the GPU workers local inference.
 */
export const VqaInferenceActivities = activityContract('VQA (inference)', [BACKEND_WORKER.openai, BACKEND_WORKER.gemini, BACKEND_WORKER.local], {
  /** Fails early, and for good, when a model cannot be reached or does not fit its base; returns the model's identity and key. */
  checkBackend: { input: ModelSpec, output: ResolvedModel },
  /** Predicts the given items (those already predicted under their key are skipped), `concurrency` requests at a time. */
  predictItems: {
    input: z.object({ ...PredictionScope, model: ModelSpec, itemIds: z.array(VqaItem.shape.id), concurrency: VqaEvaluateInput.shape.concurrency }),
    output: z.object({ made: z.int().nonnegative(), reused: z.int().nonnegative() }),
  },
});

/** The nightly evaluation's store work, on the CPU worker. */
export const NightlyActivities = activityContract('nightly evaluation', ['cpu'], {
  /** The finished run (a `result.json` directly under a run folder) written most recently; none when no run finished. */
  findNewestRun: { input: z.object({ runsUri: ObjectUri }), output: NewestRun.optional() },
  /** The run evaluated last (`last.json`), if any. */
  readNightlyState: { input: z.object({ outputUri: ObjectUri }), output: NightlyState.optional() },
  /** Records the night's outcome: `last.json` when a run was evaluated, and a NightRecord per night in `nights/`. */
  recordNight: {
    input: z.object({ outputUri: ObjectUri, night: NightDate, status: NightStatus, run: z.string().optional(), state: NightlyState.optional() }),
    output: z.void(),
  },
});

export const VqaPresets = {
  /** Reads a benchmark release and writes its items once (minutes for the largest); also the report, which renders a chart in Chromium. */
  prepare: { startToCloseTimeout: '1 hour', retry: { maximumAttempts: 5, nonRetryableErrorTypes: [VqaFailure.benchmarkLayout] } },
  /** Listing and scoring one (model, benchmark)'s stored predictions. A broken item set does not heal. */
  evaluationStore: { startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 5, nonRetryableErrorTypes: [VqaFailure.benchmarkLayout] } },
  /** Starting a local model takes a while; an unreachable server answers at once. A failed check or an adapter for another base is final. */
  checkBackend: {
    startToCloseTimeout: '15 minutes',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: [VqaFailure.backendCheck, BACKEND_FAILURE_TYPES.adapter_mismatch] },
  },
  /**
   * A batch of model calls; heartbeats per item so a lost worker is noticed within two minutes.
   * Failures that would fail every item alike (FATAL_BACKEND_ERRORS, a changed model) are final.
   */
  predictBatch: {
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '2 minutes',
    retry: {
      initialInterval: '2 seconds',
      maximumInterval: '1 minute',
      maximumAttempts: 10,
      nonRetryableErrorTypes: [VqaFailure.benchmarkLayout, VqaFailure.modelChanged, ...[...FATAL_BACKEND_ERRORS].map((code) => BACKEND_FAILURE_TYPES[code])],
    },
  },
} as const satisfies Record<string, ActivityPreset>;

export const NightlyPresets = {
  /** A listing and a few small JSON reads or writes. */
  store: { startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 5 } },
} as const satisfies Record<string, ActivityPreset>;
