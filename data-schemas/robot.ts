import { ActivityCancellationType } from '@temporalio/common';
import { z } from 'zod';
import { activityContract, queueField, type ActivityPreset, type LocalActivityPreset } from './activity-contract';
import { Finite, IsoDateTime, ObjectUri, SafeId } from './common';
import { MAX_WORKFLOW_ID_BYTES, boundedName } from './bounded';
import { ActionChunk } from './d-lan';
import { State7 } from './d-rob';
import { PolicyStage } from './prompts';
import { ActionRepresentation } from './training';
import { ObjectUriField, fileUri, objectUriRoot } from './uri';
import { ModelSpec } from './vqa';

/** Failure types of the robot pipeline's own workflows and activities (the stations' are in data-schemas/failures.ts). */
export const RobotFailure = {
  /** Thrown when a campaign's trial design cannot run (unknown task, language counts that do not add up); never retried. */
  InvalidCampaign: 'InvalidCampaign',
  /** Thrown when the episode's policy cannot answer at all (a scripted policy without a simulator, a model policy of another kind). */
  PolicyUnavailable: 'PolicyUnavailable',
  /** Thrown when the episode's verifier cannot judge at all (the oracle without a simulated world). */
  VerifierUnavailable: 'VerifierUnavailable',
  /** Thrown when robotEpisode was started on another queue than its station's. */
  WrongTaskQueue: 'WrongTaskQueue',
} as const;

/**
 * Failures of the verifiers themselves (thrown by activities/robot/verifier). HTTP and network errors of the Gemini API are not here:
 * they keep relabel's classification (GeminiFailure in data-schemas/relabel.ts, e.g.
 * GeminiRateLimited retryable, GeminiAuth not).
 */
export const VerifierFailure = {
  /** The request cannot be judged as sent (subtask index out of range, a frame that is not a JPEG); retrying sends the same. */
  BadRequest: 'VerifierBadRequest',
  /** The model answered, but not with a usable verdict (not JSON, schema violation, empty, cut off); another attempt may do better. */
  MalformedAnswer: 'VerifierMalformedAnswer',
  /** Gemini's safety filters withheld the answer or blocked the prompt; the same frames are blocked again. */
  AnswerBlocked: 'VerifierAnswerBlocked',
} as const;
export type VerifierFailure = (typeof VerifierFailure)[keyof typeof VerifierFailure];


/**
 * Robot episodes and evaluation campaigns (docs/robot-episodes.md): inputs, signals, queries and records of the
 * `robotEpisode`, `stationLock` and `evalCampaign` workflows. Units and axes are Bridge's.
 */

export const StationId = SafeId;

/** The VLA under evaluation. */
export const PolicySpec = z.discriminatedUnion('kind', [
  z.strictObject({
    /**
     * Answers the three prompts from the simulator's ground truth (simulated stations only), with
     * seeded noise and deliberate format errors so every branch of the loop runs.
     */
    kind: z.literal('scripted'),
    seed: z.int().nonnegative().default(0),
    /** Gaussian noise on each of dx, dy, dz, meters. */
    actionStdMeters: Finite.pipe(z.number().min(0).max(0.02)).default(0.002),
    /** Probability that an answer is malformed (exercises the repair loop). */
    formatErrorRate: Finite.pipe(z.number().min(0).max(1)).default(0.05),
    /** Probability that the subtask list names the wrong object. */
    wrongSubtaskRate: Finite.pipe(z.number().min(0).max(1)).default(0),
  }),
  z.strictObject({
    /** A real model behind one of the inference backends (OpenAI-compatible server, local transformers, Gemini). */
    kind: z.literal('model'),
    model: ModelSpec,
    /** Constrain the action stage to the chunk's JSON schema where the backend offers it (vLLM, Gemini). */
    structuredDecoding: z.boolean().default(false),
    /**
     * How the model writes the digits of an action chunk: `language` (VLM2VLA) or `action-tokens`
     * (the VLM2VLA-AT ablation: digits as ten rare tokens, mapped back to digits with the adapter's
     * action_tokens.json before the chunk is parsed).
     */
    actionRepresentation: ActionRepresentation.default('language'),
    /**
     * The adapter's folder (trainLora's `adapterUri`), where action_tokens.json lies. Needed for
     * `action-tokens` on an OpenAI-compatible server, which serves the adapter by name; the local
     * backend reads it from `model.adapter` when this is absent.
     */
    adapterUri: ObjectUriField.optional(),
    /** Where the model is called; by default the station's queue (openai), vla-gemini (gemini), vla-gpu (local). */
    taskQueue: queueField('station', 'gemini', 'gpu').optional(),
  }),
]).superRefine((policy, ctx) => {
  if (policy.kind !== 'model' || policy.actionRepresentation !== 'action-tokens') return;
  if (policy.model.backend === 'gemini') {
    ctx.addIssue({ code: 'custom', path: ['actionRepresentation'], message: 'action-tokens needs a VLM2VLA-AT adapter (backend openai or local), not Gemini' });
  } else if (policyAdapterUri(policy) === undefined) {
    ctx.addIssue({ code: 'custom', path: ['adapterUri'], message: 'action-tokens needs the adapter\'s folder (adapterUri, or model.adapter for the local backend) to read its action_tokens.json' });
  }
  if (policy.structuredDecoding) {
    ctx.addIssue({ code: 'custom', path: ['structuredDecoding'], message: 'structured decoding holds the chunk to JSON numbers, which an action-tokens adapter never writes: turn it off' });
  }
});
export type PolicySpec = z.infer<typeof PolicySpec>;
export type PolicySpecInput = z.input<typeof PolicySpec>;

/**
 * The URI of a model policy's adapter folder: `adapterUri`, else the local backend's `model.adapter`
 * (a plain path taken as a file on the worker). Undefined when the policy names no adapter.
 */
export function policyAdapterUri(policy: Pick<Extract<PolicySpec, { kind: 'model' }>, 'model' | 'adapterUri'>): string | undefined {
  if (policy.adapterUri !== undefined) return policy.adapterUri;
  if (policy.model.backend !== 'local' || policy.model.adapter === undefined) return undefined;
  const adapter = policy.model.adapter;
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(adapter) ? adapter : adapter.startsWith('/') ? fileUri(adapter) : undefined;
}

/** Who judges each executed chunk. */
export const VerifierSpec = z.discriminatedUnion('kind', [
  /** The simulator's true scene state (simulated stations only). */
  z.strictObject({ kind: z.literal('oracle') }),
  z.strictObject({
    kind: z.literal('gemini'),
    model: boundedName(256).default('gemini-2.5-pro'),
    /** @default vla-gemini */
    taskQueue: queueField('gemini').optional(),
  }),
  /** No automatic verifier: every chunk waits for an operator's verdict signal. */
  z.strictObject({ kind: z.literal('operator') }),
]);
export type VerifierSpec = z.infer<typeof VerifierSpec>;

export const EpisodeLimits = z.strictObject({
  /** Retries of one subtask before the episode gives up. */
  maxRetriesPerSubtask: z.int().nonnegative().max(100).default(4),
  /** Observe -> plan -> act -> verify cycles per episode. */
  maxCycles: z.int().positive().max(500).default(40),
  /** Wall-clock limit of the episode, from its start (pauses included). */
  maxDurationSeconds: z.int().positive().max(86_400).default(900),
  /** Repair re-prompts per malformed answer. */
  maxRepairs: z.int().nonnegative().max(5).default(2),
});
export type EpisodeLimits = z.infer<typeof EpisodeLimits>;

export const RobotEpisodeInput = z.strictObject({
  /** The station whose worker polls `vla-station-<stationId>`. */
  stationId: StationId,
  /** What the policy is told, in any language. */
  instruction: z.string().trim().min(1).max(2000),
  /**
   * The scene to lay out, in words the simulator understands; a real arm's operator sees it.
   * Default: the instruction (a simulated station refuses one it cannot set up). The simulator
   * judges the instruction's own task, or this scene's when it cannot read the instruction.
   */
  scene: z.string().trim().min(1).max(2000).optional(),
  /** Scene seed for simulated stations. */
  seed: z.int().nonnegative().optional(),
  /** Out-of-distribution instructions decode the subtask list at temperature 1.0 instead of 0.5. */
  inDistribution: z.boolean().default(true),
  policy: PolicySpec.default({ kind: 'scripted', seed: 0, actionStdMeters: 0.002, formatErrorRate: 0.05, wrongSubtaskRate: 0 }),
  verifier: VerifierSpec.default({ kind: 'oracle' }),
  limits: EpisodeLimits.default({ maxRetriesPerSubtask: 4, maxCycles: 40, maxDurationSeconds: 900, maxRepairs: 2 }),
  /** The episode's folder: episode.json (the full log), d_rob/ and d_lan/ datasets, frames. */
  outputUri: ObjectUriField,
  /** Campaign bookkeeping, copied into the record: at most 32, names up to 64 characters, values up to 1000 (a campaign's workflow id fits). */
  labels: z
    .record(boundedName(64), z.string().max(MAX_WORKFLOW_ID_BYTES))
    .refine((labels) => Object.keys(labels).length <= 32, 'at most 32 labels')
    .default({}),
});
export type RobotEpisodeInput = z.infer<typeof RobotEpisodeInput>;
export type RobotEpisodeInputRaw = z.input<typeof RobotEpisodeInput>;

export const VerdictDecision = z.enum(['proceed', 'retry']);
export type VerdictDecision = z.infer<typeof VerdictDecision>;

/** An operator's verdict (signal `verdict`): overrides the verifier for the current cycle. */
export const OperatorVerdict = z.strictObject({
  decision: VerdictDecision,
  reason: z.string().trim().min(1).max(2000).default('operator'),
  /** The cycle it is meant for; absent: the current (or next) verification. */
  cycle: z.int().nonnegative().optional(),
});
export type OperatorVerdict = z.infer<typeof OperatorVerdict>;
export type OperatorVerdictInput = z.input<typeof OperatorVerdict>;

export const AbortRequest = z.strictObject({ reason: z.string().trim().min(1).max(2000).default('aborted by the operator') });
export type AbortRequest = z.infer<typeof AbortRequest>;

/** Signal and query names the Web UI shows. */
export const EPISODE_SIGNALS = { pause: 'pause', resume: 'resume', abort: 'abort', verdict: 'verdict' } as const;
export const EPISODE_STATUS_QUERY = 'status';

export const StageLatency = z.strictObject({
  stage: z.enum(['reset', 'subtasks', 'motion_plan', 'action', 'execute', 'verify', 'cycle']),
  ms: z.number().nonnegative(),
});
export type StageLatency = z.infer<typeof StageLatency>;

/** An observation as the workflow sees it: the frame lives in the store. */
export const ObservationRef = z.strictObject({
  frameUri: ObjectUri,
  state: State7,
  step: z.int().nonnegative(),
  timestamp: IsoDateTime,
});
export type ObservationRef = z.infer<typeof ObservationRef>;

export const DecodeAttemptRecord = z.strictObject({
  prompt: z.string(),
  raw: z.string(),
  error: z.string().nullable(),
  latencyMs: z.number().nonnegative(),
  /** Whether the backend constrained this answer to a schema. */
  structured: z.boolean(),
});
export type DecodeAttemptRecord = z.infer<typeof DecodeAttemptRecord>;

/** One stage's answer: every attempt (repairs included) and the parsed value when one parsed. */
export const StageRecord = z.strictObject({
  stage: z.enum(PolicyStage),
  attempts: z.array(DecodeAttemptRecord).min(1),
  ok: z.boolean(),
  /** Why the stage was abandoned (still malformed after the repairs). */
  error: z.string().nullable(),
  latencyMs: z.number().nonnegative(),
});
export type StageRecord = z.infer<typeof StageRecord>;

export const VerdictRecord = z.strictObject({
  decision: VerdictDecision,
  reason: z.string(),
  /** 'oracle', 'gemini:<model>', 'operator', or 'episode' (a cycle that never reached the verifier). */
  by: z.string(),
  promptVersion: z.string().nullable(),
  raw: z.string().nullable(),
  latencyMs: z.number().nonnegative(),
});
export type VerdictRecord = z.infer<typeof VerdictRecord>;

export const CycleRecord = z.strictObject({
  cycle: z.int().nonnegative(),
  subtaskIndex: z.int().nonnegative(),
  subtask: z.string(),
  /** Attempt of this subtask, from 0. */
  attempt: z.int().nonnegative(),
  before: ObservationRef,
  motionPlan: StageRecord.nullable(),
  action: StageRecord.nullable(),
  chunk: ActionChunk.nullable(),
  /** Actions executed of the chunk, and the per-action observations (D_rob steps). */
  executed: z.int().nonnegative(),
  trace: z.array(ObservationRef),
  after: ObservationRef.nullable(),
  /** Why nothing (or not all) was executed: an unsafe chunk, a stale observation, an abort. */
  executeError: z.string().nullable(),
  /**
   * The arm moved without the episode seeing the chunk's end (a lost answer, a restarted worker):
   * the episode observed again. Not counted as a retry of the subtask.
   */
  interrupted: z.boolean(),
  verdict: VerdictRecord,
  latencies: z.array(StageLatency),
  startedAt: IsoDateTime,
});
export type CycleRecord = z.infer<typeof CycleRecord>;

export const EpisodeOutcome = z.enum([
  /** Every subtask verified done. */
  'completed',
  'retries_exhausted',
  'cycle_limit',
  'time_limit',
  'aborted',
  /** The subtask list was still malformed after the repairs. */
  'policy_format',
  /** The station, the verifier or the model failed in a way retries cannot heal (see `reason`). */
  'error',
]);
export type EpisodeOutcome = z.infer<typeof EpisodeOutcome>;

/** The simulator's judgement of the final scene against the episode's task (null on a real arm). */
export const SimEvaluation = z.strictObject({
  task: z.string(),
  success: z.boolean(),
  score: z.number().nonnegative(),
  maxScore: z.number().positive(),
  milestones: z.array(z.strictObject({ name: z.string(), achieved: z.boolean() })),
});
export type SimEvaluation = z.infer<typeof SimEvaluation>;

export const EpisodeStatus = z.strictObject({
  phase: z.enum(['waiting_for_station', 'resetting', 'subtasks', 'observing', 'motion_plan', 'action', 'executing', 'verifying', 'paused', 'finishing', 'done']),
  paused: z.boolean(),
  stationId: z.string(),
  subtasks: z.array(z.string()),
  subtaskIndex: z.int().nonnegative(),
  currentSubtask: z.string().nullable(),
  cycle: z.int().nonnegative(),
  retriesOnSubtask: z.int().nonnegative(),
  lastVerdict: VerdictRecord.nullable(),
  timings: z.strictObject({
    elapsedMs: z.number().nonnegative(),
    lastCycleMs: z.number().nonnegative().nullable(),
    medianCycleMs: z.number().nonnegative().nullable(),
    /** Latest latency of each stage. */
    lastStageMs: z.record(z.string(), z.number()),
  }),
  outcome: EpisodeOutcome.nullable(),
});
export type EpisodeStatus = z.infer<typeof EpisodeStatus>;

/**
 * The files episodes and campaigns leave, by name: `episode.json` (an EpisodeRecord) in the
 * episode's outputUri, `summary.json` (CampaignSummaryFile) and `report.html` in the campaign's.
 */
export const EPISODE_RECORD_FILE = 'episode.json';
export const CAMPAIGN_SUMMARY_FILE = 'summary.json';
export const CAMPAIGN_REPORT_FILE = 'report.html';

/**
 * `owner.json` in a station worker's state folder (local disk, not the store): the episode that
 * reset the arm last and owns it until it releases it. Written by the station activities only.
 */
export const STATION_OWNER_FILE = 'owner.json';
export const StationOwnerFile = z.strictObject({ episodeId: z.string().min(1), since: IsoDateTime });
export type StationOwnerFile = z.infer<typeof StationOwnerFile>;

export const EpisodeRecord = z.strictObject({
  formatVersion: z.literal(1),
  episodeId: SafeId,
  workflowId: z.string(),
  runId: z.string(),
  stationId: z.string(),
  input: RobotEpisodeInput,
  startedAt: IsoDateTime,
  finishedAt: IsoDateTime,
  outcome: EpisodeOutcome,
  reason: z.string(),
  subtasks: z.array(z.string()),
  subtasksStage: StageRecord.nullable(),
  reset: ObservationRef.nullable(),
  cycles: z.array(CycleRecord),
  evaluation: SimEvaluation.nullable(),
  operatorEvents: z.array(z.strictObject({ at: IsoDateTime, event: z.string(), detail: z.string() })),
});
export type EpisodeRecord = z.infer<typeof EpisodeRecord>;

export const RobotEpisodeResult = z.strictObject({
  episodeId: SafeId,
  outcome: EpisodeOutcome,
  reason: z.string(),
  /** The simulator's verdict on the final scene; null on a real arm. */
  success: z.boolean().nullable(),
  evaluation: SimEvaluation.nullable(),
  cycles: z.int().nonnegative(),
  subtasks: z.array(z.string()),
  subtasksCompleted: z.int().nonnegative(),
  formatFailures: z.int().nonnegative(),
  repairs: z.int().nonnegative(),
  /** episode.json (the full log), and the D_rob / D_lan datasets of the episode. */
  recordUri: ObjectUri,
  dRobUri: ObjectUri.nullable(),
  dLanUri: ObjectUri.nullable(),
});
export type RobotEpisodeResult = z.infer<typeof RobotEpisodeResult>;

// ---------------------------------------------------------------------------------------------
// Station lock: one episode at a time per station.

export const STATION_LOCK_SIGNALS = { acquire: 'acquire', release: 'release', granted: 'stationGranted', ping: 'stationPing' } as const;
export const StationLeaseRequest = z.strictObject({ workflowId: z.string().min(1).max(MAX_WORKFLOW_ID_BYTES), runId: z.string().min(1).max(64) });
export type StationLeaseRequest = z.infer<typeof StationLeaseRequest>;
/** `stationLock`'s input (also what it hands to itself through continue-as-new). */
export const StationLockInput = z.strictObject({
  stationId: StationId,
  holder: StationLeaseRequest.nullable().optional(),
  waiting: z.array(StationLeaseRequest).max(10_000).optional(),
});
export type StationLockInput = z.input<typeof StationLockInput>;

// ---------------------------------------------------------------------------------------------
// Evaluation campaigns

export const SuiteTaskId = z.enum(['pick_up', 'pick_place_lift', 'pick_place_long', 'multilingual', 'item_above']);
export type SuiteTaskId = z.infer<typeof SuiteTaskId>;

/**
 * Named trial designs. `figure5-paper`: each task as often as the paper ran it, 30 trials, and 90
 * for the multilingual task (30 in each of its three languages).
 */
export const CampaignPreset = z.enum(['figure5-paper']);
export type CampaignPreset = z.infer<typeof CampaignPreset>;

/** Trials per task when neither `trials`, `preset` nor `trialsPerTask` says otherwise. */
export const DEFAULT_CAMPAIGN_TRIALS = 3;

const TrialCount = z.int().positive().max(1000);

export const EvalCampaignInput = z
  .strictObject({
    /** Figure-5 tasks to run (default all five). */
    tasks: z.array(SuiteTaskId).min(1).default(['pick_up', 'pick_place_lift', 'pick_place_long', 'multilingual', 'item_above']),
    /** Trials of every task (default 3); not together with `preset`. */
    trials: TrialCount.optional(),
    /** A named trial design instead of `trials`, e.g. "figure5-paper" (30 per task, 90 for multilingual). */
    preset: CampaignPreset.optional(),
    /** Trials of single tasks, over `trials` and `preset`; the multilingual task cycles es, zh, hi. */
    trialsPerTask: z.partialRecord(SuiteTaskId, TrialCount).default({}),
    /** Stations to spread the trials over; each runs one episode at a time. */
    stations: z.array(StationId).min(1).default(['sim-1']),
    policy: PolicySpec.default({ kind: 'scripted', seed: 0, actionStdMeters: 0.002, formatErrorRate: 0.05, wrongSubtaskRate: 0 }),
    verifier: VerifierSpec.default({ kind: 'oracle' }),
    limits: EpisodeLimits.default({ maxRetriesPerSubtask: 4, maxCycles: 40, maxDurationSeconds: 900, maxRepairs: 2 }),
    /** Scene seeds are seed + trial. */
    seed: z.int().nonnegative().default(0),
    /** The campaign's folder: episodes/<task>-<trial>/, summary.json and report.html. */
    outputUri: objectUriRoot(64, '/episodes/<task>-t<trial>'),
    title: z.string().min(1).max(200).default('VLM2VLA robot evaluation (Figure 5 tasks)'),
    /**
     * After this many seconds, and while no worker polls a station's task queue, the campaign says so
     * (warning log, `waitingOn` in the progress query, search attribute VlaWaitingOn); its episodes keep waiting. @default 60
     */
    noWorkerWarningSeconds: z.number().positive().max(86_400).default(60),
  })
  .superRefine((input, ctx) => {
    if (input.trials !== undefined && input.preset !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['trials'], message: `give "trials" or "preset" ("${input.preset}"), not both; per-task counts go in "trialsPerTask"` });
    }
    for (const id of Object.keys(input.trialsPerTask)) {
      if (!input.tasks.some((t) => t === id)) ctx.addIssue({ code: 'custom', path: ['trialsPerTask', id], message: `"${id}" is not one of the campaign's tasks (${input.tasks.join(', ')})` });
    }
  });
export type EvalCampaignInput = z.infer<typeof EvalCampaignInput>;
export type EvalCampaignInputRaw = z.input<typeof EvalCampaignInput>;

/** Languages a campaign's instructions come in (the multilingual task: Spanish, Mandarin, Hindi). */
export const InstructionLanguage = z.enum(['en', 'es', 'zh', 'hi']);
export type InstructionLanguage = z.infer<typeof InstructionLanguage>;

/** One task's share of a campaign's trials, as summary.json's `design.tasks` states it. */
export const TaskTrialDesign = z.strictObject({
  taskId: SuiteTaskId,
  trials: TrialCount,
  /** What set the count: the task's own `trialsPerTask` entry, the preset, `trials`, or the default. */
  from: z.enum(['trialsPerTask', 'preset', 'trials', 'default']),
  /** Trials per instruction language, for a task asked in several (the multilingual one); else null. */
  languages: z.partialRecord(InstructionLanguage, z.int().positive()).nullable(),
});
export type TaskTrialDesign = z.infer<typeof TaskTrialDesign>;

/** A campaign's trial design: summary.json's `design` (null there for campaigns recorded before it), shown in the report. */
export const CampaignTrialDesign = z
  .strictObject({
    preset: CampaignPreset.nullable(),
    presetDescription: z.string().nullable(),
    /** Scene seeds are seed + trial (per task). */
    seed: z.int().nonnegative(),
    tasks: z.array(TaskTrialDesign).min(1),
    totalTrials: z.int().positive(),
  })
  .superRefine((design, ctx) => {
    const sum = design.tasks.reduce((n, t) => n + t.trials, 0);
    if (design.totalTrials !== sum) ctx.addIssue({ code: 'custom', path: ['totalTrials'], message: `totalTrials is ${design.totalTrials} but the tasks' trials add up to ${sum}` });
    design.tasks.forEach((t, i) => {
      const perLanguage = t.languages === null ? t.trials : Object.values(t.languages).reduce((n, k) => n + k, 0);
      if (perLanguage !== t.trials) ctx.addIssue({ code: 'custom', path: ['tasks', i, 'languages'], message: `the languages of "${t.taskId}" add up to ${perLanguage} trials, not ${t.trials}` });
    });
  });
export type CampaignTrialDesign = z.infer<typeof CampaignTrialDesign>;

/** summary.json of a campaign: the parts other tools read by schema (the statistics and episodes are the report's). */
export const CampaignSummaryFile = z.looseObject({
  campaignId: z.string().min(1),
  design: CampaignTrialDesign.nullable(),
});
export type CampaignSummaryFile = z.infer<typeof CampaignSummaryFile>;

export const EvalCampaignResult = z.strictObject({
  campaignId: z.string(),
  episodes: z.int().nonnegative(),
  reportUri: ObjectUri,
  summaryUri: ObjectUri,
  /** Success rate per task, %. */
  successRate: z.record(z.string(), z.number()),
});
export type EvalCampaignResult = z.infer<typeof EvalCampaignResult>;


// ---------------------------------------------------------------------------------------------
// Activities: what robotEpisode and evalCampaign ask of the workers (data-schemas/activity-contract.ts).
// Inputs are plain objects (no refinements beyond the shared records'): the station parses each one
// per cycle (bench/episode.ts measures that overhead).

/** The episode an activity acts for: the arm belongs to the episode that reset it last. */
export const EpisodeRef = z.object({
  episodeId: z.string().min(1),
  /** The episode's folder; frames are staged under it. */
  outputUri: ObjectUri,
});
export type EpisodeRef = z.infer<typeof EpisodeRef>;

export const ResetStationInput = EpisodeRef.extend({ instruction: z.string(), scene: z.string().optional(), seed: z.int().nonnegative().optional() });
export type ResetStationInput = z.infer<typeof ResetStationInput>;

export const ExecuteChunkInput = EpisodeRef.extend({
  chunk: ActionChunk,
  /** The step of the observation the chunk was planned from. */
  expectedStep: z.int().nonnegative(),
});
export type ExecuteChunkInput = z.infer<typeof ExecuteChunkInput>;

export const ExecuteChunkResult = z.object({
  executed: z.int().nonnegative(),
  stopped: z.boolean(),
  after: ObservationRef,
  trace: z.array(ObservationRef),
});
export type ExecuteChunkResult = z.infer<typeof ExecuteChunkResult>;

/** What the workflow sends a verifier after a chunk. */
export const VerifyInput = z.object({
  episodeId: z.string().min(1),
  cycle: z.int().nonnegative(),
  instruction: z.string(),
  subtasks: z.array(z.string()),
  subtaskIndex: z.int().nonnegative(),
  before: ObservationRef,
  after: ObservationRef,
});
export type VerifyInput = z.infer<typeof VerifyInput>;

/** What the workflow asks of one policy stage. */
export const PolicyStageInput = z.object({
  episodeId: z.string().min(1),
  cycle: z.int().nonnegative(),
  stage: z.enum(PolicyStage),
  instruction: z.string(),
  /** The episode's subtask list (empty for the subtasks stage). */
  subtasks: z.array(z.string()),
  subtaskIndex: z.int().nonnegative(),
  /** The motion plan, for the action stage. */
  motionPlan: z.string().optional(),
  /** The current observation's frame (o_0 for the subtasks stage). */
  frameUri: ObjectUri,
  inDistribution: z.boolean(),
  policy: PolicySpec,
  maxRepairs: z.int().nonnegative(),
});
export type PolicyStageInput = z.infer<typeof PolicyStageInput>;

/** A stage's parsed answer: the subtask list, the motion plan, or the action chunk. */
export const PolicyStageValue = z.union([z.array(z.string()), z.string(), ActionChunk]);
export type PolicyStageValue = z.infer<typeof PolicyStageValue>;

export const PolicyStageResult = z.object({
  record: StageRecord,
  /** The parsed answer; null when it was still malformed after the repairs. */
  value: PolicyStageValue.nullable(),
});
export type PolicyStageResult = z.infer<typeof PolicyStageResult>;

export const FinalizedEpisode = z.object({ recordUri: ObjectUri, dRobUri: ObjectUri.nullable(), dLanUri: ObjectUri.nullable() });
export type FinalizedEpisode = z.infer<typeof FinalizedEpisode>;

const EpisodeIdOnly = z.object({ episodeId: z.string().min(1) });

/** The station's own activities: the arm, its camera, the simulator's oracle (task queue `vla-station-<id>`). */
export const StationActivities = activityContract('robot station', ['station'], {
  /** Claims the arm for the episode and lays out the scene; the first observation. */
  stationReset: { input: ResetStationInput, output: ObservationRef },
  stationObserve: { input: EpisodeRef, output: ObservationRef },
  /** One chunk planned at `expectedStep`, heartbeating; refused once the arm has moved since. */
  stationExecute: { input: ExecuteChunkInput, output: ExecuteChunkResult },
  stationSafeStop: { input: z.object({ reason: z.string() }), output: z.void() },
  /** Lets the arm go: the next episode's reset claims it. */
  stationRelease: { input: EpisodeIdOnly, output: z.void() },
  /** The simulator's judgement of the episode; null on a real arm. */
  stationEvaluate: { input: EpisodeIdOnly, output: SimEvaluation.nullable() },
  /** The simulator oracle: judges the chunk on the true scene. */
  verifyOracle: { input: VerifyInput, output: VerdictRecord },
});

/**
 * One policy stage: on the station (scripted policy, OpenAI-compatible servers), on the Gemini
 * worker (Gemini models) or on a GPU worker (local models).
 */
export const RobotPolicyActivities = activityContract('robot policy', ['station', 'gemini', 'gpu'], {
  policyStage: { input: PolicyStageInput, output: PolicyStageResult },
});

/** The Gemini verifier, on the Gemini worker where the key lives. */
export const RobotVerifierActivities = activityContract('robot verifier (Gemini)', ['gemini'], {
  verifyGemini: { input: VerifyInput.extend({ model: z.string().min(1) }), output: VerdictRecord },
});

/**
 * An episode record checked against EpisodeRecord but passed on as sent: a parse rebuilds objects in
 * the schema's key order, and episode.json is written from this value, so its bytes stay the
 * workflow's (its cycle records order their keys otherwise).
 */
const EpisodeRecordAsSent = z.custom<EpisodeRecord>().superRefine((record, ctx) => {
  const checked = EpisodeRecord.safeParse(record);
  if (!checked.success) for (const issue of checked.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
});

/** The episode's record and datasets, written at its end (the station's worker and the CPU worker register it). */
export const EpisodeRecordActivities = activityContract('robot episode records', ['station', 'cpu'], {
  finalizeEpisode: { input: z.object({ record: EpisodeRecordAsSent }), output: FinalizedEpisode },
});

/** One episode of a campaign, as planned. */
export const CampaignTrial = z.object({
  taskId: SuiteTaskId,
  taskName: z.string(),
  /** 0-based, per task. */
  trial: z.int().nonnegative(),
  instruction: z.string(),
  language: z.string().optional(),
  scene: z.string(),
  seed: z.int().nonnegative(),
  inDistribution: z.boolean(),
});
export type CampaignTrial = z.infer<typeof CampaignTrial>;

/** What became of a trial (the episode's own record says the rest). */
export const TrialOutcome = z.object({
  trial: CampaignTrial,
  stationId: z.string(),
  workflowId: z.string(),
  outputUri: ObjectUri,
  /** The episode workflow failed (not: the episode failed its task). */
  error: z.string().nullable(),
});
export type TrialOutcome = z.infer<typeof TrialOutcome>;

/** The campaign input's trial design, as planCampaign and the report take it. */
export const CampaignDesign = z.object({
  tasks: z.array(SuiteTaskId).min(1),
  trials: TrialCount.optional(),
  preset: CampaignPreset.optional(),
  trialsPerTask: z.partialRecord(SuiteTaskId, TrialCount).optional(),
  seed: z.int().nonnegative(),
});
export type CampaignDesign = z.infer<typeof CampaignDesign>;

/** The campaign's bookkeeping on the CPU worker. */
export const CampaignActivities = activityContract('robot campaign', ['cpu'], {
  /** The trials of a campaign, each task's instructions in turn, scene seeds seed + trial. */
  planCampaign: { input: CampaignDesign, output: z.array(CampaignTrial) },
  /** summary.json and report.html from the episodes' records. */
  writeCampaignReport: {
    input: z.object({
      campaignId: z.string().min(1),
      title: z.string(),
      outputUri: ObjectUri,
      policy: PolicySpec,
      verifier: VerifierSpec,
      stations: z.array(z.string()),
      /** Absent in campaigns recorded before the report showed the design. */
      design: CampaignDesign.optional(),
      outcomes: z.array(TrialOutcome),
    }),
    output: EvalCampaignResult,
  },
});

const STATION_RETRY = { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 } as const;
const MODEL_RETRY = { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 8 } as const;

/** Local activities of the station worker (the quick station stages; no server round trip each: bench/episode.ts). */
export const RobotLocalPresets = {
  /** Reset, observe, scripted/OpenAI policy stages, oracle, safe stop, release: seconds each; a flaky arm gets a few quick retries. */
  stationStage: { startToCloseTimeout: '5 minutes', retry: STATION_RETRY },
} as const satisfies Record<string, LocalActivityPreset>;

export const RobotPresets = {
  /**
   * The chunk on the arm: a regular activity (eagerly dispatched to the same worker) so that it
   * heartbeats and an abort reaches it at once (WAIT_CANCELLATION_COMPLETED: the episode learns
   * what ran before it moves on). A lost worker is noticed within the 10-second heartbeat; the retry
   * finds the arm moved and is refused.
   */
  armChunk: {
    startToCloseTimeout: '10 minutes',
    scheduleToStartTimeout: '10 minutes',
    heartbeatTimeout: '10 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: STATION_RETRY,
  },
  /** The episode's record and datasets: hundreds of frames copied in the store. */
  records: { startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 5 } },
  /** A model on another worker (Gemini, GPU): the wait for a free worker is bounded, a busy backend gets backoff. */
  remotePolicy: { startToCloseTimeout: '10 minutes', scheduleToStartTimeout: '10 minutes', retry: MODEL_RETRY },
  /** One Gemini verifier call, under the Gemini queue's rate limit. */
  geminiVerifier: { startToCloseTimeout: '5 minutes', scheduleToStartTimeout: '10 minutes', retry: MODEL_RETRY },
  /** Planning and the report: store reads and writes; an impossible trial design is never retried. */
  campaign: { startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 5, nonRetryableErrorTypes: [RobotFailure.InvalidCampaign] } },
} as const satisfies Record<string, ActivityPreset>;
