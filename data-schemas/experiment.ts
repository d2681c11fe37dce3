import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import stableStringify from 'fast-json-stable-stringify';
import { z } from 'zod';
import { utf8Bytes } from './bounded';
import { IsoDateTime, ObjectUri, Sha256Hex } from './common';
import { activityContract, queueField, TaskQueue, type ActivityPreset } from './activity-contract';
import { ObjectUriField, objectUriRoot } from './uri';
import { ChunkAggregation, GEMINI_PROMPT_VERSION, HEURISTIC_LABELER_VERSION, LabelerChoice, RelabelDatasetResult } from './relabel';
import { POLICY_PROMPT_VERSION } from './prompts';
import { SHARD_FORMAT_VERSION, ShardDatasetInput, ShardDatasetResult } from './shard';
import { TrainLoraInput, TrainLoraResult } from './training';
import { BenchmarkSource, VqaSweepResult } from './vqa';
import { EvalCampaignInput, EvalCampaignResult, PolicySpec } from './robot';

/**
 * The experiment: the whole method as one workflow (docs/experiments.md). Relabel a D_rob dataset,
 * shard the D_lan, LoRA-train each variant, sweep VQA retention against the base, run the Figure-5
 * campaign with each variant, and write one report. Every stage is keyed by the content hashes of
 * its inputs, its settings and its code version: a stage whose key already has a sealed result
 * (its lineage.json) in the store is reused, by this experiment or any other.
 * Node-free: workflows import this module.
 */

export const StageKind = z.enum(['relabel', 'shard', 'train', 'vqa', 'campaign']);
export type StageKind = z.infer<typeof StageKind>;

/**
 * Each stage's code version, part of its key: bump one when the stage's code changes what it writes
 * for the same inputs and settings, and nothing the older code made is reused.
 */
export const STAGE_CODE_VERSIONS: Record<StageKind, string> = {
  relabel: `relabel-${HEURISTIC_LABELER_VERSION}-${GEMINI_PROMPT_VERSION}`,
  shard: `shard-f${SHARD_FORMAT_VERSION}-${POLICY_PROMPT_VERSION}`,
  train: 'train-1',
  vqa: 'vqa-1',
  campaign: 'campaign-1',
};

/** What an artefact is; the kind decides how its content hash is taken (docs/experiments.md, "Lineage"). */
export const ArtifactKind = z.enum(['d_rob', 'd_lan', 'shards', 'adapter', 'vqa', 'campaign', 'model', 'benchmark']);
export type ArtifactKind = z.infer<typeof ArtifactKind>;

/** Lowercase names: they go into workflow ids, object keys, model names and search attributes. */
const ExperimentName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be 1-64 characters of a-z 0-9 . _ - and start with a letter or digit');

/** The training settings of one variant: trainLora's input without the shard set, output and queue. */
export const TrainingVariant = z.strictObject({
  /** The variant's name in the report, the VQA sweep and the search attribute VlaVariants. */
  name: ExperimentName,
  baseModel: TrainLoraInput.shape.baseModel,
  baseModelName: TrainLoraInput.shape.baseModelName,
  actionRepresentation: TrainLoraInput.shape.actionRepresentation,
  lora: TrainLoraInput.shape.lora,
  learningRate: TrainLoraInput.shape.learningRate,
  warmupSteps: TrainLoraInput.shape.warmupSteps,
  weightDecay: TrainLoraInput.shape.weightDecay,
  epochs: TrainLoraInput.shape.epochs,
  maxSteps: TrainLoraInput.shape.maxSteps,
  perDeviceBatchSize: TrainLoraInput.shape.perDeviceBatchSize,
  gradientAccumulationSteps: TrainLoraInput.shape.gradientAccumulationSteps,
  precision: TrainLoraInput.shape.precision,
  maxSequenceLength: TrainLoraInput.shape.maxSequenceLength,
  seed: TrainLoraInput.shape.seed,
  gpus: TrainLoraInput.shape.gpus,
  distributed: TrainLoraInput.shape.distributed,
  checkpointEvery: TrainLoraInput.shape.checkpointEvery,
  evalEvery: TrainLoraInput.shape.evalEvery,
});
export type TrainingVariant = z.infer<typeof TrainingVariant>;

/** A campaign's policy: `variant` drives the arm with each variant's adapter (local backend); or one fixed policy. */
export const ExperimentPolicy = z.union([z.literal('variant'), PolicySpec]);
export type ExperimentPolicy = z.infer<typeof ExperimentPolicy>;

/** What the stage folders and the report append to `storeUri`. */
const EXPERIMENT_URI_RESERVE = 200;

export const ExperimentInput = z
  .strictObject({
    /** The experiment's name: its workflow id is `experiment:<name>`, its report `<storeUri>/experiments/<name>/`. */
    name: ExperimentName,
    /** Root of every stage's output (`<storeUri>/stages/<stage>/<key>`), shared by the experiments that reuse each other's stages. */
    storeUri: objectUriRoot(EXPERIMENT_URI_RESERVE, '/stages/<stage>/<key>/...'),
    /** The D_rob dataset (a root with manifest.json, e.g. from `vla data import`). */
    datasetUri: ObjectUriField,
    relabel: z
      .strictObject({
        labeler: LabelerChoice.default({ name: 'heuristic' }),
        maxReprompts: z.int().min(0).max(10).default(3),
        limit: z.int().positive().optional().describe('Only the first N trajectories of the manifest (smoke runs).'),
        aggregation: ChunkAggregation.default({ perAxisMeters: 0.025, absoluteMeters: 0.05 }),
        maxConcurrent: z.int().min(1).max(256).default(32),
      })
      .prefault({}),
    shard: z
      .strictObject({
        validationFraction: ShardDatasetInput.shape.validationFraction,
        seed: ShardDatasetInput.shape.seed,
        targetShardBytes: ShardDatasetInput.shape.targetShardBytes,
        directionLabels: ShardDatasetInput.shape.directionLabels,
      })
      .prefault({}),
    /** One or more training variants (e.g. VLM2VLA and the VLM2VLA-AT ablation), trained in parallel. */
    variants: z.array(TrainingVariant).min(1).max(16),
    /** VQA retention of every variant against its base model (local backend on the GPU queue); absent: no sweep. */
    vqa: z
      .strictObject({
        benchmarks: z.array(BenchmarkSource).min(1),
        limit: z.int().positive().optional().describe('Smoke runs: at most this many questions per benchmark.'),
        concurrency: z.int().min(1).max(256).default(8),
        batchSize: z.int().min(1).max(10_000).optional(),
        maxConcurrentEvaluations: z.int().min(1).max(64).default(2),
        retentionThreshold: z.number().positive().optional(),
      })
      .optional(),
    /** The Figure-5 campaign, once per variant; absent: no campaign. */
    campaign: z
      .strictObject({
        tasks: EvalCampaignInput.shape.tasks,
        trials: EvalCampaignInput.shape.trials,
        preset: EvalCampaignInput.shape.preset,
        trialsPerTask: EvalCampaignInput.shape.trialsPerTask,
        stations: EvalCampaignInput.shape.stations,
        /** `variant` (default): each variant's adapter drives the arm. A fixed policy (e.g. scripted) runs one campaign all variants share. */
        policy: ExperimentPolicy.default('variant'),
        verifier: EvalCampaignInput.shape.verifier,
        limits: EvalCampaignInput.shape.limits,
        seed: EvalCampaignInput.shape.seed,
      })
      .optional(),
    /** Caps over the whole experiment; a stage that would start past one is not started and the experiment ends `budget_exhausted`. */
    budget: z
      .strictObject({
        /** Gemini spend (relabeling with the Gemini labeler) in US dollars; the relabel stage gets what is left as its own cap. */
        geminiUsd: z.number().positive().optional(),
        /** GPU hours: training wall time x GPUs, plus the local-backend sweep's wall time. */
        gpuHours: z.number().positive().optional(),
      })
      .prefault({}),
    taskQueues: z
      .strictObject({
        gemini: queueField('gemini').default(TaskQueue.gemini),
        gpu: queueField('gpu').default(TaskQueue.gpu),
      })
      .prefault({}),
  })
  .superRefine((input, ctx) => {
    const names = input.variants.map((v) => v.name);
    names.forEach((name, i) => {
      if (name === 'base' || name.startsWith('base-')) ctx.addIssue({ code: 'custom', path: ['variants', i, 'name'], message: `"${name}" is reserved for the base models in the VQA sweep` });
      if (names.indexOf(name) !== i) ctx.addIssue({ code: 'custom', path: ['variants', i, 'name'], message: `duplicate variant name ${name}` });
    });
    const campaign = input.campaign;
    if (campaign?.trials !== undefined && campaign.preset !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['campaign', 'trials'], message: `give "trials" or "preset" ("${campaign.preset}"), not both` });
    }
    if (campaign !== undefined && campaign.policy !== 'variant' && campaign.policy.kind === 'model') {
      ctx.addIssue({ code: 'custom', path: ['campaign', 'policy'], message: 'a model policy comes from the variants: give "variant", or a scripted policy shared by all' });
    }
    if (campaign?.policy === 'variant' && campaign.verifier.kind === 'operator') {
      ctx.addIssue({ code: 'custom', path: ['campaign', 'verifier'], message: 'an operator verifier waits for a person on every chunk: run that campaign on its own (evalCampaign)' });
    }
    const benchmarks = input.vqa?.benchmarks.map((b) => b.benchmark) ?? [];
    benchmarks.forEach((b, i) => {
      if (benchmarks.indexOf(b) !== i) ctx.addIssue({ code: 'custom', path: ['vqa', 'benchmarks', i, 'benchmark'], message: `benchmark ${b} listed twice` });
    });
  });
export type ExperimentInput = z.infer<typeof ExperimentInput>;
export type ExperimentInputRaw = z.input<typeof ExperimentInput>;

/** Failure types of the experiment and its activities (none heals by retrying). */
export const ExperimentFailure = {
  /** An artefact a stage needs (or made) is missing or unreadable: its stage's output was deleted or is corrupt. */
  BadArtifact: 'ExperimentArtifactMissing',
  /** A lineage.json in a stage's folder names another key: a hand edit or a key collision; nothing is reused from it. */
  LineageMismatch: 'ExperimentLineageMismatch',
  /** Another experiment is running the same stage (same key) right now; re-run once it finishes to reuse its result. */
  StageBusy: 'ExperimentStageBusy',
  /** A stage's workflow failed; the experiment stops there (finished stages stay sealed for the re-run). */
  StageFailed: 'ExperimentStageFailed',
} as const;

// --- Lineage: one file per artefact the experiment makes (docs/experiments.md, "Lineage")

export const LINEAGE_FORMAT = 'vla-lineage';
export const LINEAGE_FORMAT_VERSION = 1;
/** Written last into a stage's folder: its presence means the stage is complete (the reuse marker). */
export const LINEAGE_FILE = 'lineage.json';

/** An artefact and the hash of its content (how each kind is hashed: docs/experiments.md). */
export const ArtifactRef = z.strictObject({
  kind: ArtifactKind,
  uri: z.string().min(1).max(2048),
  /** Absent for inputs named, not hashed: a base model, benchmark data. */
  sha256: Sha256Hex.optional(),
});
export type ArtifactRef = z.infer<typeof ArtifactRef>;

export const LineageInput = ArtifactRef.extend({
  /** What the input is to the stage, e.g. `dataset`, `shards`, `baseModel`, `adapter:<variant>`. */
  role: z.string().min(1).max(200),
  /** The input's own lineage file, when the experiment made it. */
  lineageUri: ObjectUri.optional(),
});
export type LineageInput = z.infer<typeof LineageInput>;

export const LineageRecord = z.strictObject({
  format: z.literal(LINEAGE_FORMAT),
  formatVersion: z.literal(LINEAGE_FORMAT_VERSION),
  stage: StageKind,
  /** sha256 of the stage's key material (stage, code version, settings, inputs' hashes): the stage's folder name. */
  key: Sha256Hex,
  artifact: ArtifactRef,
  inputs: z.array(LineageInput),
  /** The settings that made it (the ones in the key). */
  settings: z.json(),
  code: z.strictObject({
    /** STAGE_CODE_VERSIONS[stage] */
    stage: z.string().min(1),
    /** The worker's git revision when it sealed the stage ("unknown" outside a checkout). */
    gitRevision: z.string().min(1),
  }),
  producedBy: z.strictObject({ experiment: z.string().min(1), workflowId: z.string().min(1), childWorkflowId: z.string().min(1) }),
  startedAt: IsoDateTime,
  finishedAt: IsoDateTime,
  /** The stage workflow's result, which a reusing experiment takes as its own. */
  result: z.json(),
});
export type LineageRecord = z.infer<typeof LineageRecord>;

/** What the workflow computes a stage's key from. */
export const StageKeyMaterial = z.strictObject({
  stage: StageKind,
  code: z.string(),
  settings: z.json(),
  /** Inputs by role: content hash where there is one, else the name (base model, benchmark data). */
  inputs: z.record(z.string(), z.string()),
});
export type StageKeyMaterial = z.infer<typeof StageKeyMaterial>;

// --- Status: the `status` query, experiment.json and the report

export const StageState = z.enum(['pending', 'running', 'reused', 'done', 'failed', 'skipped', 'cancelled']);
export type StageState = z.infer<typeof StageState>;

export const StageRow = z.strictObject({
  /** `relabel`, `shard`, `vqa`, `train:<variant>`, `campaign:<variant>`. */
  id: z.string(),
  stage: StageKind,
  variant: z.string().optional(),
  state: StageState,
  key: Sha256Hex.optional(),
  outputUri: ObjectUri.optional(),
  lineageUri: ObjectUri.optional(),
  /** The stage workflow (absent when reused). */
  workflowId: z.string().optional(),
  startedAt: IsoDateTime.optional(),
  finishedAt: IsoDateTime.optional(),
  /** Why it failed or was skipped; which experiment made a reused result. */
  detail: z.string().optional(),
  /** What the stage spent (0 when reused). */
  geminiUsd: z.number().nonnegative().optional(),
  gpuHours: z.number().nonnegative().optional(),
});
export type StageRow = z.infer<typeof StageRow>;

export const ExperimentState = z.enum(['running', 'paused', 'completed', 'failed', 'cancelled', 'budget_exhausted']);
export type ExperimentState = z.infer<typeof ExperimentState>;

export const ExperimentStatus = z.strictObject({
  name: z.string(),
  state: ExperimentState,
  /** Pause was asked: no stage starts until resume (running ones finish). */
  pauseRequested: z.boolean(),
  stages: z.array(StageRow),
  spent: z.strictObject({ geminiUsd: z.number().nonnegative(), gpuHours: z.number().nonnegative() }),
  budget: z.strictObject({ geminiUsd: z.number().optional(), gpuHours: z.number().optional() }),
  error: z.string().optional(),
  reportUri: ObjectUri.optional(),
});
export type ExperimentStatus = z.infer<typeof ExperimentStatus>;

/** Each stage's result, for the report (undefined: not run). */
export const ExperimentOutputs = z.strictObject({
  relabel: RelabelDatasetResult.optional(),
  shard: ShardDatasetResult.optional(),
  train: z.record(z.string(), TrainLoraResult),
  vqa: VqaSweepResult.optional(),
  /** By variant; variants share one campaign when its policy is fixed. */
  campaign: z.record(z.string(), EvalCampaignResult),
});
export type ExperimentOutputs = z.infer<typeof ExperimentOutputs>;

export const ExperimentResult = ExperimentStatus.extend({
  reportUri: ObjectUri,
  /** `<storeUri>/experiments/<name>/experiment.json`: this result, stored. */
  statusUri: ObjectUri,
});
export type ExperimentResult = z.infer<typeof ExperimentResult>;

/** `<storeUri>/experiments/<name>/experiment.json`: the input, the final status and every stage's result. */
export const ExperimentFile = z.looseObject({ status: ExperimentStatus, outputs: ExperimentOutputs });
export type ExperimentFile = z.infer<typeof ExperimentFile>;

/** Signals and the query of the experiment workflow. */
export const EXPERIMENT_STATUS_QUERY = 'status';
export const EXPERIMENT_PAUSE_SIGNAL = 'pause';
export const EXPERIMENT_RESUME_SIGNAL = 'resume';

/** The name of each variant's base in the VQA sweep, by base model: `base` when all share one base model, else `base-<i>` in order of first use. */
export function baseModelNames(variants: readonly Pick<TrainingVariant, 'baseModel'>[]): Map<string, string> {
  const distinct = [...new Set(variants.map((v) => v.baseModel))];
  return new Map(distinct.map((model, i) => [model, distinct.length === 1 ? 'base' : `base-${i}`]));
}

/** A stage's key: sha256 of its key material as canonical JSON (keys sorted), so it does not depend on how an object was built. */
export function stageKey(material: StageKeyMaterial): string {
  return bytesToHex(sha256(utf8Bytes(stableStringify(material))));
}

/** `<storeUri>/stages/<stage>/<first 32 hex of the key>`. */
export function stageOutputUri(storeUri: string, stage: StageKind, key: string): string {
  return `${storeUri.replace(/\/+$/, '')}/stages/${stage}/${key.slice(0, 32)}`;
}

/** `<storeUri>/experiments/<name>`: report.html, experiment.json. */
export function experimentUri(storeUri: string, name: string): string {
  return `${storeUri.replace(/\/+$/, '')}/experiments/${name}`;
}

// --- Activities: what the experiment asks of the CPU worker

export const ExperimentActivities = activityContract('experiment', ['cpu'], {
  /** The content hash of each artefact (docs/experiments.md, "Lineage"); fails naming one that is missing or corrupt. */
  digestArtifacts: {
    input: z.object({ artifacts: z.array(ArtifactRef.pick({ kind: true, uri: true })) }),
    output: z.array(Sha256Hex),
  },
  /** The stage's lineage.json when it is sealed under this key; null when the stage has not completed. */
  findStage: {
    input: z.object({ outputUri: ObjectUri, key: Sha256Hex }),
    output: LineageRecord.nullable(),
  },
  /** Hashes the stage's artefact and writes its lineage.json (create-if-absent: a record already there wins and is returned). */
  sealStage: {
    input: LineageRecord.omit({ format: true, formatVersion: true, code: true, artifact: true }).extend({
      outputUri: ObjectUri,
      codeStage: z.string(),
      artifact: ArtifactRef.pick({ kind: true, uri: true }),
    }),
    output: LineageRecord,
  },
  /** Writes experiment.json and report.html (Table 1 and Figure 5 per variant beside the paper's, lineage, reuse). */
  writeExperimentReport: {
    input: z.object({ input: ExperimentInput, status: ExperimentStatus, outputs: ExperimentOutputs }),
    output: z.object({ reportUri: ObjectUri, statusUri: ObjectUri }),
  },
});

export const ExperimentPresets = {
  /** Store reads and hashes (an adapter of a few hundred MB at most); heartbeats while hashing. */
  store: { startToCloseTimeout: '30 minutes', heartbeatTimeout: '1 minute', retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 8 } },
} as const satisfies Record<string, ActivityPreset>;

