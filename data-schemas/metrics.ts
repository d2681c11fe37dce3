/**
 * The pipelines' own Prometheus metrics, declared once (docs/design.md, "Metric names live in one
 * module"). They go out through the Temporal SDK's runtime meter, next to the SDK's metrics, on the
 * endpoint a worker serves when VLA_METRICS_ADDRESS is set; without it every call here is a no-op.
 *
 * Activities pass `Context.current().metricMeter`, workflows the workflow's `metricMeter` (it
 * records nothing while a workflow replays), the station worker the runtime's meter. A contract
 * like the schemas beside it, Node-free: workflows import it too.
 *
 * Naming: `vla_` prefix, the unit in the name, counters end in `_total`. Labels stay small and
 * bounded (a labeler, a model, a benchmark, a stage, a station): never a trajectory, run or item id.
 * The SDK adds `namespace`, `taskQueue` and `activityType` / `workflowType` itself (its own metrics
 * spell them `task_queue`, `activity_type`, `workflow_type`).
 * Counters of the SDK are integers, so spend is counted in nano-dollars (costs are rounded to the
 * nano-dollar where they are computed: activities/gemini/pricing.ts).
 */
import type { MetricMeter } from '@temporalio/common';

export interface MetricDeclaration {
  name: string;
  kind: 'counter' | 'gauge' | 'histogram';
  valueType: 'int' | 'float';
  /** The labels this project sets (the SDK adds its own, see above). */
  labels: readonly string[];
  help: string;
}

const declare = <T extends Record<string, MetricDeclaration>>(metrics: T): T => metrics;

export const PIPELINE_METRICS = declare({
  trajectoriesLabelled: {
    name: 'vla_relabel_trajectories_labelled_total',
    kind: 'counter',
    valueType: 'int',
    labels: ['labeler'],
    help: 'D_lan records written (create-if-absent: a record that already existed is not counted)',
  },
  trajectoriesQuarantined: {
    name: 'vla_relabel_trajectories_quarantined_total',
    kind: 'counter',
    valueType: 'int',
    labels: ['labeler'],
    help: 'trajectories set aside after every answer was rejected (create-if-absent)',
  },
  geminiInputTokens: {
    name: 'vla_gemini_input_tokens_total',
    kind: 'counter',
    valueType: 'int',
    labels: ['model', 'use'],
    help: 'prompt tokens billed by Gemini, per answered call (retried calls count again: they are billed again)',
  },
  geminiOutputTokens: {
    name: 'vla_gemini_output_tokens_total',
    kind: 'counter',
    valueType: 'int',
    labels: ['model', 'use'],
    help: 'output tokens billed by Gemini (thinking tokens included), per answered call',
  },
  geminiCost: {
    name: 'vla_gemini_cost_nanodollars_total',
    kind: 'counter',
    valueType: 'int',
    labels: ['model', 'use'],
    help: 'spend on Gemini at list prices, in nano-dollars (divide by 1e9 for USD)',
  },
  trainingStep: {
    name: 'vla_training_step',
    kind: 'gauge',
    valueType: 'int',
    labels: [],
    help: 'optimizer step the running LoRA training reached',
  },
  trainingLoss: {
    name: 'vla_training_loss',
    kind: 'gauge',
    valueType: 'float',
    labels: [],
    help: 'training loss at the last logged step',
  },
  trainingTokensPerSecond: {
    name: 'vla_training_tokens_per_second',
    kind: 'gauge',
    valueType: 'float',
    labels: [],
    help: 'training throughput at the last logged step, in tokens per second',
  },
  vqaPredictions: {
    name: 'vla_vqa_predictions_total',
    kind: 'counter',
    valueType: 'int',
    labels: ['benchmark'],
    help: 'VQA answers newly predicted and stored (reused predictions are not counted)',
  },
  vqaItemsScored: {
    name: 'vla_vqa_items_scored_total',
    kind: 'counter',
    valueType: 'int',
    labels: ['benchmark'],
    help: 'VQA items scored (every item of a benchmark, each time a model is scored on it)',
  },
  episodeStageDuration: {
    name: 'vla_episode_stage_duration_seconds',
    kind: 'histogram',
    valueType: 'float',
    labels: ['stage'],
    help: 'robot episode cycle latency per stage (motion_plan, action, execute, verify) and per whole cycle, in seconds',
  },
  stationAvailable: {
    name: 'vla_station_available',
    kind: 'gauge',
    valueType: 'int',
    labels: ['station'],
    help: '1 while the station worker runs and its arm answered the last call, 0 after a call the arm did not answer',
  },
});

/** Bucket boundaries of the histograms (the SDK's default buckets are for milliseconds). */
export const HISTOGRAM_BUCKETS: Record<string, number[]> = {
  [PIPELINE_METRICS.episodeStageDuration.name]: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
};

const counter = (meter: MetricMeter, m: MetricDeclaration) => meter.createCounter(m.name, undefined, m.help);
const gauge = (meter: MetricMeter, m: MetricDeclaration) => meter.createGauge(m.name, m.valueType, undefined, m.help);

export function countTrajectoryLabelled(meter: MetricMeter, labeler: string): void {
  counter(meter, PIPELINE_METRICS.trajectoriesLabelled).add(1, { labeler });
}

export function countTrajectoryQuarantined(meter: MetricMeter, labeler: string): void {
  counter(meter, PIPELINE_METRICS.trajectoriesQuarantined).add(1, { labeler });
}

/** What the Gemini calls were for: relabelling trajectories, answering VQA items, verifying robot chunks. */
export type GeminiUse = 'relabel' | 'vqa' | 'verifier';

export function countGeminiUsage(meter: MetricMeter, tags: { model: string; use: GeminiUse }, usage: { inputTokens: number; outputTokens: number; costUsd: number }): void {
  counter(meter, PIPELINE_METRICS.geminiInputTokens).add(usage.inputTokens, tags);
  counter(meter, PIPELINE_METRICS.geminiOutputTokens).add(usage.outputTokens, tags);
  counter(meter, PIPELINE_METRICS.geminiCost).add(Math.round(usage.costUsd * 1e9), tags);
}

export function recordTrainingStep(meter: MetricMeter, step: { step: number; loss?: number; tokensPerSecond?: number }): void {
  gauge(meter, PIPELINE_METRICS.trainingStep).set(step.step);
  if (step.loss !== undefined && Number.isFinite(step.loss)) gauge(meter, PIPELINE_METRICS.trainingLoss).set(step.loss);
  if (step.tokensPerSecond !== undefined && Number.isFinite(step.tokensPerSecond)) gauge(meter, PIPELINE_METRICS.trainingTokensPerSecond).set(step.tokensPerSecond);
}

export function countVqaPredictions(meter: MetricMeter, benchmark: string, n: number): void {
  if (n > 0) counter(meter, PIPELINE_METRICS.vqaPredictions).add(n, { benchmark });
}

export function countVqaItemsScored(meter: MetricMeter, benchmark: string, n: number): void {
  if (n > 0) counter(meter, PIPELINE_METRICS.vqaItemsScored).add(n, { benchmark });
}

export function recordEpisodeStage(meter: MetricMeter, stage: string, ms: number): void {
  const m = PIPELINE_METRICS.episodeStageDuration;
  meter.createHistogram(m.name, 'float', undefined, m.help).record(Math.max(0, ms) / 1000, { stage });
}

export function setStationAvailable(meter: MetricMeter, station: string, available: boolean): void {
  gauge(meter, PIPELINE_METRICS.stationAvailable).set(available ? 1 : 0, { station });
}
