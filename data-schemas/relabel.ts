import { z } from 'zod';
import { ObjectUri, SafeId } from './common';
import { Labeler } from './d-lan';
import { activityContract, queueField, TaskQueue, type ActivityPreset } from './activity-contract';
import { MAX_OBJECT_URI_LENGTH, ObjectUriField, joinUri } from './uri';

/**
 * The relabel pipeline's contracts (D_rob -> D_lan): labeler choice, what a labeler returns, the
 * workflows' inputs and results.
 */

/** Version of the heuristic labeler's rules; bump when its output changes. Part of the output key. */
export const HEURISTIC_LABELER_VERSION = 'h2';
export const DEFAULT_GEMINI_MODEL = 'gemini-2.5-flash';

export const LabelerChoice = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('heuristic') }),
  z.strictObject({
    name: z.literal('gemini'),
    model: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,80}$/, 'must be a Gemini model name such as gemini-2.5-flash')
      .default(DEFAULT_GEMINI_MODEL)
      .describe('The Gemini model that labels (with the gemini labeler).'),
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
 * A trajectory after the common Bridge cleaning (docs/method.md, "Cleaning Bridge actions"): translation per step replaced
 * by the state delta, gripper binarised (1 open, 0 closed). One entry per source step.
 */
export interface CleanedTrajectory {
  steps: number;
  /** [dx, dy, dz] in metres per step. */
  translation: [number, number, number][];
  /** Binarised gripper command per step. */
  gripper: (0 | 1)[];
}

/**
 * Post-processing of action chunks (docs/method.md, "Action chunk post-processing": about 2.5 cm per direction, 5 cm absolute).
 * Both take effect: a command is emitted once one axis reaches `perAxisMeters`, and no command is
 * ever longer than `absoluteMeters` (definition: `aggregateChunkExplained`). The default cap equals
 * the stations' default per-step limit (DEFAULT_MAX_STEP_METERS), so default D_lan chunks never
 * trip a default station's safety check.
 */
export const ChunkAggregation = z.strictObject({
  /** A command is emitted once its movement along one axis reaches this many metres. @default 0.025 */
  perAxisMeters: z.number().positive().max(1).default(0.025),
  /** Upper bound on a command's norm (m): a command is closed before the step that would take it past this, and a longer step is split. @default 0.05 */
  absoluteMeters: z.number().positive().max(1).default(0.05),
});
export type ChunkAggregation = z.infer<typeof ChunkAggregation>;

/** Failure types of the relabel workflows and activities (besides the labeler's GeminiFailure below). */
export const RelabelFailure = {
  /** Thrown when a D_rob trajectory file is not JSON or fails its schema; the trajectory is reported as failed, never retried. */
  InvalidTrajectory: 'InvalidTrajectory',
  /** Thrown by relabelDataset when the labeler stayed unreachable past the outage limit (the report says what was done). */
  Outage: 'RelabelOutage',
  /** Thrown by relabelDataset when a fatal labeler error (bad key, unknown model, budget) stopped the run early. */
  Stopped: 'RelabelStopped',
} as const;

/**
 * Failure types the Gemini labeler throws (docs/design.md, "Classify every failure"). The retryable ones go to the
 * activity's retry policy; the fatal ones cannot heal by retrying any trajectory, so the dataset
 * workflow stops the whole run on them instead of failing every trajectory one by one.
 */
export const GeminiFailure = {
  /** 429 RESOURCE_EXHAUSTED; carries the server's RetryInfo delay as `nextRetryDelay` when given. */
  RateLimited: 'GeminiRateLimited',
  /** 429 naming a per-day quota (QuotaFailure quotaId ...PerDay...): nothing succeeds before the daily reset. */
  QuotaExhausted: 'GeminiQuotaExhausted',
  /** 5xx (overloaded, internal error) or another status worth retrying. */
  Unavailable: 'GeminiUnavailable',
  /** The request never got an HTTP answer: connection refused or reset, DNS, or the client timeout. */
  Network: 'GeminiNetwork',
  /** 400 and other client errors: the request itself is wrong; retrying sends the same request. */
  BadRequest: 'GeminiBadRequest',
  /** 401/403 or an invalid API key. */
  Auth: 'GeminiAuth',
  /** 404: the model does not exist or does not support generateContent. */
  UnknownModel: 'GeminiUnknownModel',
} as const;
export type GeminiFailure = (typeof GeminiFailure)[keyof typeof GeminiFailure];

/** Failure types after which a relabel run stops instead of failing every trajectory one by one. */
export const FATAL_GEMINI_FAILURES: readonly string[] = [GeminiFailure.BadRequest, GeminiFailure.Auth, GeminiFailure.UnknownModel, GeminiFailure.QuotaExhausted];

/**
 * Attempts of one Gemini call while the endpoint is unreachable (GeminiNetwork: connection refused,
 * DNS, the client's timeout) before the trajectory fails; the activity's other failures keep the
 * full retry policy. About 15 s of backoff for a refused connection, so an outage fails children
 * within a minute and the parent's outage breaker (`stopAfterConsecutiveFailures`) trips in
 * minutes rather than after hours of per-trajectory retries.
 */
export const GEMINI_UNREACHABLE_ATTEMPTS = 4;

/** Whether a failure of this type should stop the whole relabel run, not just one trajectory. */
export function isFatalGeminiFailure(type: string | null | undefined): boolean {
  return type != null && FATAL_GEMINI_FAILURES.includes(type);
}

/** Version of the Gemini prompt and answer schema; bump on any change. Part of the output key. */
export const GEMINI_PROMPT_VERSION = 'p1';

/** The labeler's identity as recorded in every D_lan record and in output keys. */
export function labelerIdentity(choice: LabelerChoice): Labeler {
  if (choice.name === 'heuristic') return { name: 'heuristic', version: HEURISTIC_LABELER_VERSION };
  return { name: 'gemini', version: `${choice.model}-${GEMINI_PROMPT_VERSION}`, model: choice.model, promptVersion: GEMINI_PROMPT_VERSION };
}

/** `heuristic-h2`, `gemini-gemini-2.5-flash-p1`: names the output folder and child workflow ids. */
export function labelerKey(choice: LabelerChoice): string {
  const id = labelerIdentity(choice);
  return `${id.name}-${id.version}`;
}


/** Where a relabel run writes unless told otherwise: beside the source, keyed by labeler version. */
export function defaultRelabelOutput(datasetUri: string, choice: LabelerChoice): string {
  return joinUri(datasetUri, 'labels', labelerKey(choice));
}

export const RELABEL_RECORDS_DIR = 'records';
export const RELABEL_QUARANTINE_DIR = 'quarantine';
export const RELABEL_REPORT_FILE = 'report.json';

export const RelabelDatasetInput = z.strictObject({
  /** D_rob dataset root (has manifest.json). */
  datasetUri: ObjectUriField,
  labeler: LabelerChoice.default({ name: 'heuristic' }).describe('Who labels: heuristic (rules, no API key) or gemini (GEMINI_API_KEY in the Gemini worker).'),
  /** D_lan output root. @default `<datasetUri>/labels/<labeler>-<version>` */
  outputUri: ObjectUriField.optional(),
  maxConcurrent: z
    .int()
    .min(1)
    .max(256)
    .default(32)
    .describe(
      "Trajectories labelled at once (child workflows in flight). With Gemini, keep it at least twice the Gemini worker's concurrent calls so the model slots never wait on Temporal.",
    ),
  maxReprompts: z.int().min(0).max(10).default(3).describe('Re-prompts with the specific problem before a trajectory is quarantined.'),
  /** Stop starting trajectories once spend reaches either cap; running ones finish. */
  budget: z
    .strictObject({
      usd: z.number().positive().optional().describe('Stop starting trajectories once the spend reaches this many US dollars; running ones finish.'),
      tokens: z.int().positive().optional().describe('Stop starting trajectories once this many tokens are spent; running ones finish.'),
    })
    .refine((b) => b.usd !== undefined || b.tokens !== undefined, 'give usd or tokens')
    .optional(),
  limit: z.int().positive().optional().describe('Only the first N trajectories of the manifest (smoke runs).'),
  aggregation: ChunkAggregation.default({ perAxisMeters: 0.025, absoluteMeters: 0.05 }),
  /** Task queue of the Gemini activities (its server-side rate limit is the global quota). @default 'vla-gemini' */
  geminiTaskQueue: queueField('gemini').default(TaskQueue.gemini),
  /** Children per workflow run before continue-as-new (history stays bounded). @default 500 */
  childrenPerRun: z.int().min(1).max(5000).default(500),
  /**
   * Outage breaker: after this many trajectories in a row fail with the same cause (e.g. GeminiNetwork,
   * a full store), no new trajectory starts and the run fails naming the cause; a re-run resumes. @default 5
   */
  stopAfterConsecutiveFailures: z.int().min(1).max(10_000).default(5),
  /**
   * With the Gemini labeler: after this many seconds, and while no worker polls `geminiTaskQueue`,
   * the run says so (warning log, `waitingOn` in the progress query, search attribute VlaWaitingOn). @default 60
   */
  noWorkerWarningSeconds: z.number().positive().max(86_400).default(60),
}).superRefine((input, ctx) => {
  // The children's input holds the output URI: a default one past the limit would fail every child.
  if (input.outputUri !== undefined || input.datasetUri.length > MAX_OBJECT_URI_LENGTH) return;
  const output = defaultRelabelOutput(input.datasetUri, input.labeler);
  if (output.length > MAX_OBJECT_URI_LENGTH) {
    ctx.addIssue({ code: 'custom', path: ['datasetUri'], message: `the default outputUri (<datasetUri>/labels/${labelerKey(input.labeler)}) would be ${output.length} characters, over ${MAX_OBJECT_URI_LENGTH}: give a shorter datasetUri or an outputUri` });
  }
});
export type RelabelDatasetInput = z.infer<typeof RelabelDatasetInput>;

export const RelabelTrajectoryInput = z.strictObject({
  datasetUri: ObjectUriField,
  trajectoryId: SafeId,
  labeler: LabelerChoice,
  outputUri: ObjectUriField,
  maxReprompts: z.int().min(0).max(10),
  aggregation: ChunkAggregation,
  geminiTaskQueue: queueField('gemini'),
});
export type RelabelTrajectoryInput = z.infer<typeof RelabelTrajectoryInput>;

export const RelabelTrajectoryResult = z.strictObject({
  trajectoryId: SafeId,
  status: z.enum(['done', 'skipped', 'quarantined']),
  recordUri: ObjectUri.optional(),
  reason: z.string().optional(),
  attempts: z.int().nonnegative(),
  usage: TokenUsage,
});
export type RelabelTrajectoryResult = z.infer<typeof RelabelTrajectoryResult>;

export const QuarantineRecord = z.strictObject({
  trajectoryId: SafeId,
  labeler: Labeler,
  reason: z.string().min(1),
  attempts: z.array(z.strictObject({ kind: LabelProblemKind, problem: z.string() })),
  quarantinedAt: z.iso.datetime({ offset: true }),
});
export type QuarantineRecord = z.infer<typeof QuarantineRecord>;

export const RelabelStatus = z.enum(['running', 'completed', 'budget_exhausted', 'stopped_fatal']);
export type RelabelStatus = z.infer<typeof RelabelStatus>;

export const RelabelCounts = z.strictObject({
  total: z.int().nonnegative(),
  done: z.int().nonnegative(),
  skipped: z.int().nonnegative(),
  quarantined: z.int().nonnegative(),
  failed: z.int().nonnegative(),
});
export type RelabelCounts = z.infer<typeof RelabelCounts>;

/** What the `progress` query returns while a relabelDataset run goes on. */
export const RelabelProgress = z.strictObject({
  status: RelabelStatus,
  counts: RelabelCounts,
  usage: TokenUsage,
  /** Trajectories handed to children so far (manifest order). */
  cursor: z.int().nonnegative(),
  runsSoFar: z.int().nonnegative(),
  fatalError: z.string().optional(),
  /** A task queue the run waits on that no worker polls (a misspelled or stopped Gemini queue). */
  waitingOn: z.string().optional(),
});
export type RelabelProgress = z.infer<typeof RelabelProgress>;

/** A trajectory set aside (quarantined or failed) and why. */
export const TrajectoryReason = z.strictObject({ trajectoryId: SafeId, reason: z.string() });

export const RelabelReport = z.strictObject({
  datasetUri: ObjectUri,
  outputUri: ObjectUri,
  labeler: Labeler,
  status: RelabelStatus,
  counts: RelabelCounts,
  usage: TokenUsage,
  fatalError: z.string().optional(),
  quarantined: z.array(TrajectoryReason),
  failed: z.array(TrajectoryReason),
  finishedAt: z.iso.datetime({ offset: true }),
});
export type RelabelReport = z.infer<typeof RelabelReport>;

export const RelabelDatasetResult = RelabelReport.pick({ status: true, outputUri: true, counts: true, usage: true }).extend({
  reportUri: ObjectUri,
  manifestUri: ObjectUri,
  /** The first 100 quarantined trajectories; the report lists them all. */
  quarantined: RelabelReport.shape.quarantined,
});
export type RelabelDatasetResult = z.infer<typeof RelabelDatasetResult>;

// --- Activities: what the relabel workflows ask of the workers (data-schemas/activity-contract.ts)

const TrajectoryRef = { datasetUri: ObjectUri, trajectoryId: SafeId };
const OutputTrajectoryRef = { outputUri: ObjectUri, trajectoryId: SafeId };

/** Where a trajectory stands for this labeler version: its record written, set aside, or still to do. */
export const TrajectoryState = z.enum(['done', 'quarantined', 'pending']);
export type TrajectoryState = z.infer<typeof TrajectoryState>;

/** The relabel activities of the CPU worker: store reads and writes, the heuristic labeler. */
export const RelabelCpuActivities = activityContract('relabel (CPU)', ['cpu'], {
  /** One page of trajectory ids in manifest order; the workflow never holds the whole list. */
  listTrajectoryPage: {
    input: z.object({ datasetUri: ObjectUri, offset: z.int().nonnegative(), limit: z.int().positive() }),
    output: z.object({ datasetName: z.string(), total: z.int().nonnegative(), ids: z.array(SafeId) }),
  },
  /** Whether this trajectory already has its record (or was quarantined) for this labeler version. */
  relabelStatus: { input: z.object(OutputTrajectoryRef), output: TrajectoryState },
  /**
   * Which of a page of trajectories still need labelling (no record, not quarantined): the parent
   * starts no child for the others, so re-running a large relabel is cheap.
   */
  pendingTrajectories: { input: z.object({ outputUri: ObjectUri, ids: z.array(SafeId) }), output: z.array(SafeId) },
  /** The embedded default labeler: deterministic rules, no key, no cost. */
  labelHeuristic: { input: z.object(TrajectoryRef), output: LabelOutcome },
  /**
   * Builds the D_lan record from the labeler's segments and the trajectory's real actions, and
   * writes it create-if-absent: exactly one record per trajectory and labeler version.
   */
  writeRelabelRecord: {
    input: z.object({ ...TrajectoryRef, outputUri: ObjectUri, labeler: LabelerChoice, segments: z.array(SegmentLabel).min(1), aggregation: ChunkAggregation }),
    output: z.object({ created: z.boolean(), recordUri: ObjectUri, steps: z.int().nonnegative() }),
  },
  /** Sets a trajectory aside with the reason; a quarantined trajectory is never written as done. */
  writeQuarantine: {
    input: z.object({ ...OutputTrajectoryRef, labeler: LabelerChoice, reason: z.string().min(1), attempts: QuarantineRecord.shape.attempts }),
    output: z.void(),
  },
  /**
   * Writes the D_lan manifest (every record with its sha256) and the run report. A re-run rewrites
   * both from what the store holds, so they always describe the records that exist.
   */
  finalizeRelabel: {
    input: z.object({
      datasetUri: ObjectUri,
      outputUri: ObjectUri,
      labeler: LabelerChoice,
      status: RelabelStatus,
      counts: RelabelCounts,
      usage: TokenUsage,
      fatalError: z.string().optional(),
      failed: z.array(TrajectoryReason),
    }),
    output: z.object({ reportUri: ObjectUri, manifestUri: ObjectUri, quarantined: z.array(TrajectoryReason) }),
  },
});

/** The Gemini labeler, on the Gemini queue whose server-side rate limit is the global quota. */
export const RelabelGeminiActivities = activityContract('relabel (Gemini)', ['gemini'], {
  /** One model call for one trajectory; `feedback` lists the problems of earlier answers (the re-prompt). */
  labelGemini: { input: z.object({ ...TrajectoryRef, model: z.string().min(1), feedback: z.array(z.string()) }), output: LabelOutcome },
});

export const RelabelPresets = {
  /** Reads the manifest (a few MB for 100k trajectories). */
  manifestPage: {
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8 },
  },
  /** Reads every record once; heartbeats so a lost worker is noticed within a minute. */
  finalize: { startToCloseTimeout: '1 hour', heartbeatTimeout: '1 minute', retry: { maximumAttempts: 5 } },
  /** One trajectory's store reads and writes and heuristic labelling: short, so a lost worker is noticed quickly. */
  trajectoryStep: {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8 },
  },
  /**
   * One model call; the SDK does not retry, Temporal does (with the server's RetryInfo delay). An
   * unreachable endpoint gives up sooner, after GEMINI_UNREACHABLE_ATTEMPTS (the activity decides),
   * so an outage reaches the parent's breaker in minutes, not after 12 attempts (~14 min) each.
   * Fatal failures (bad key, unknown model, daily quota) are never retried.
   */
  geminiCall: {
    startToCloseTimeout: '3 minutes',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 12, nonRetryableErrorTypes: [...FATAL_GEMINI_FAILURES] },
  },
} as const satisfies Record<string, ActivityPreset>;
