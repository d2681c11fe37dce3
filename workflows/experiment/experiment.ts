import { ApplicationFailure, CancellationScope, condition, defineQuery, defineSignal, executeChild, isCancellation, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { z } from 'zod';
import { workflowQueue } from '../../data-schemas/activity-contract';
import {
  EXPERIMENT_PAUSE_SIGNAL,
  EXPERIMENT_RESUME_SIGNAL,
  EXPERIMENT_STATUS_QUERY,
  ExperimentActivities,
  ExperimentFailure,
  ExperimentInput,
  ExperimentPresets,
  LINEAGE_FILE,
  baseModelNames,
  STAGE_CODE_VERSIONS,
  stageKey,
  stageOutputUri,
  type ArtifactRef,
  type ExperimentOutputs,
  type ExperimentResult,
  type ExperimentStatus,
  type LineageInput,
  type LineageRecord,
  type StageKind,
  type StageRow,
  type TrainingVariant,
} from '../../data-schemas/experiment';
import { labelerKey, RelabelDatasetResult, type RelabelDatasetInput } from '../../data-schemas/relabel';
import { EvalCampaignResult, type EvalCampaignInputRaw, type PolicySpecInput } from '../../data-schemas/robot';
import { ShardDatasetResult, type ShardDatasetInput } from '../../data-schemas/shard';
import { TrainLoraResult, type TrainLoraInput } from '../../data-schemas/training';
import { joinUri } from '../../data-schemas/uri';
import { VqaSweepResult, type ModelSpec, type VqaSweepRequest } from '../../data-schemas/vqa';
import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { rootCause, rootFailure } from '../failure-cause';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';
import { VlaDataset, VlaExperiment, VlaStage, VlaState, VlaVariants, upsertKeywordList, upsertKeywords } from '../search-attributes';
import { relabelDataset } from '../relabel/relabel-dataset';
import { shardDataset } from '../shard/shard-dataset';
import { trainLora } from '../training/train-lora';
import { vqaSweep } from '../vqa/vqa-sweep';
import { evalCampaign } from '../robot/eval-campaign';

export const experimentStatusQuery = defineQuery<ExperimentStatus>(EXPERIMENT_STATUS_QUERY);
export const experimentPauseSignal = defineSignal(EXPERIMENT_PAUSE_SIGNAL);
export const experimentResumeSignal = defineSignal(EXPERIMENT_RESUME_SIGNAL);

const cpu = proxyFor(ExperimentActivities, workflowQueue('cpu'), ExperimentPresets.store);

/** A cap of the experiment's budget was reached before a stage could start: the stages left are skipped, not failed. */
class BudgetReached extends Error {}

/** What one stage needs to run or be reused. */
interface StageSpec<R> {
  row: StageRow;
  /** The settings that change what the stage writes (its key material, recorded in its lineage). */
  settings: z.core.util.JSONType;
  inputs: LineageInput[];
  resultSchema: z.ZodType<R>;
  childWorkflowId: (outputUri: string) => string;
  run: (outputUri: string, childWorkflowId: string) => Promise<R>;
  artifact: (result: R, outputUri: string) => Pick<ArtifactRef, 'kind' | 'uri'>;
  /** Checked before the stage starts (not when it is reused). */
  budgetCheck?: () => void;
  /** What the finished stage spent. */
  spent?: (result: R, hours: number) => { geminiUsd?: number; gpuHours?: number };
}

interface StageOutcome<R> {
  result: R;
  lineage: LineageRecord;
}

/**
 * The whole method as one workflow (docs/experiments.md): relabel the dataset, shard the D_lan,
 * LoRA-train every variant in parallel, sweep VQA retention of every variant against its base,
 * run the Figure-5 campaign with every variant (next to the sweep), and write one report. Each
 * stage runs as its own workflow. A stage's key covers its code version, its settings and the
 * content hashes of its inputs; a stage whose key is already sealed in the store (lineage.json) is
 * reused, whichever experiment sealed it. Pause holds the stages not yet started; cancel stops the
 * running stage workflows and waits for them; the budget covers the whole experiment.
 */
export async function experiment(raw: unknown): Promise<ExperimentResult> {
  const input = parseWorkflowInput('experiment', ExperimentInput, raw);
  const { workflowId } = workflowInfo();
  upsertKeywords([
    { key: VlaStage, value: 'experiment' },
    { key: VlaDataset, value: input.datasetUri },
    { key: VlaExperiment, value: input.name },
    { key: VlaState, value: 'running' },
  ]);
  upsertKeywordList(VlaVariants, input.variants.map((v) => v.name));
  // Stage workflows carry the experiment's name, so the Web UI lists an experiment's stages together.
  const stageOptions = (workflowId: string) => ({ workflowId, typedSearchAttributes: [{ key: VlaExperiment, value: input.name }] });

  const row = (id: string, stage: StageKind, variant?: string): StageRow => ({ id, stage, ...(variant !== undefined && { variant }), state: 'pending' });
  const rows = {
    relabel: row('relabel', 'relabel'),
    shard: row('shard', 'shard'),
    train: new Map(input.variants.map((v) => [v.name, row(`train:${v.name}`, 'train', v.name)])),
    vqa: input.vqa ? row('vqa', 'vqa') : undefined,
    campaign: new Map(input.campaign ? input.variants.map((v) => [v.name, row(`campaign:${v.name}`, 'campaign', v.name)]) : []),
  };
  const status: ExperimentStatus = {
    name: input.name,
    state: 'running',
    pauseRequested: false,
    stages: [rows.relabel, rows.shard, ...rows.train.values(), ...(rows.vqa ? [rows.vqa] : []), ...rows.campaign.values()],
    spent: { geminiUsd: 0, gpuHours: 0 },
    budget: { ...(input.budget.geminiUsd !== undefined && { geminiUsd: input.budget.geminiUsd }), ...(input.budget.gpuHours !== undefined && { gpuHours: input.budget.gpuHours }) },
  };
  setHandler(experimentStatusQuery, () => status);
  // The Web UI shows the stage table on the workflow's page (its "current details"), reused stages marked.
  const showDetails = (): void =>
    setCurrentDetails(
      [`**${status.state}**`, '', '| stage | state | detail |', '| --- | --- | --- |', ...status.stages.map((r) => `| ${r.id} | ${r.state} | ${(r.detail ?? '').replace(/[|\n]/g, ' ')} |`)].join('\n'),
    );
  const update = (row: StageRow, patch: Partial<StageRow>): void => {
    Object.assign(row, patch);
    showDetails();
  };
  const setState = (state: ExperimentStatus['state']): void => {
    if (status.state === state) return;
    status.state = state;
    upsertKeywords([{ key: VlaState, value: state }]);
    showDetails();
  };
  showDetails();
  setHandler(experimentPauseSignal, () => {
    status.pauseRequested = true;
  });
  setHandler(experimentResumeSignal, () => {
    status.pauseRequested = false;
  });

  /** Stages of this run by key: two rows with the same key (variants sharing a fixed-policy campaign) run it once. */
  const byKey = new Map<string, { rowId: string; outcome: Promise<StageOutcome<unknown>> }>();

  async function runStage<R>(spec: StageSpec<R>): Promise<StageOutcome<R>> {
    const { row } = spec;
    const material = {
      stage: row.stage,
      code: STAGE_CODE_VERSIONS[row.stage],
      settings: spec.settings,
      inputs: Object.fromEntries(spec.inputs.map((i) => [i.role, i.sha256 ?? `${i.kind}:${i.uri}`])),
    };
    const key = stageKey(material);
    const outputUri = stageOutputUri(input.storeUri, row.stage, key);
    update(row, { key, outputUri, lineageUri: joinUri(outputUri, LINEAGE_FILE) });

    const same = byKey.get(key);
    if (same) {
      const outcome = (await same.outcome) as StageOutcome<R>;
      update(row, { state: 'reused', detail: `the same stage as ${same.rowId}` });
      return outcome;
    }
    const outcome = (async (): Promise<StageOutcome<R>> => {
      const sealed = await cpu.findStage({ outputUri, key });
      if (sealed) {
        update(row, { state: 'reused', detail: `sealed by experiment ${sealed.producedBy.experiment} at ${sealed.finishedAt}` });
        return { result: spec.resultSchema.parse(sealed.result), lineage: sealed };
      }
      // Pause holds stages that have not started; a reused one costs nothing, so it does not wait.
      if (status.pauseRequested) {
        setState('paused');
        await condition(() => !status.pauseRequested);
        setState('running');
      }
      spec.budgetCheck?.();
      const childWorkflowId = spec.childWorkflowId(outputUri);
      const startedAt = new Date();
      update(row, { state: 'running', workflowId: childWorkflowId, startedAt: startedAt.toISOString() });
      let result: R;
      try {
        result = await spec.run(outputUri, childWorkflowId);
      } catch (err) {
        update(row, { state: isCancellation(err) ? 'cancelled' : 'failed', detail: rootCause(err), finishedAt: new Date().toISOString() });
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          // The stage workflow's id derives from its output folder, so this is the same stage, unsealed, run by another experiment now.
          update(row, { detail: `${childWorkflowId} is running this very stage for another experiment; run this one again once it finishes to reuse its result` });
          throw ApplicationFailure.nonRetryable(`${row.id}: ${row.detail}`, ExperimentFailure.StageBusy);
        }
        throw err;
      }
      const finishedAt = new Date();
      const hours = (finishedAt.getTime() - startedAt.getTime()) / 3_600_000;
      const spent = spec.spent?.(result, hours) ?? {};
      if (spent.geminiUsd !== undefined) {
        row.geminiUsd = spent.geminiUsd;
        status.spent.geminiUsd += spent.geminiUsd;
      }
      if (spent.gpuHours !== undefined) {
        row.gpuHours = spent.gpuHours;
        status.spent.gpuHours += spent.gpuHours;
      }
      const lineage = await cpu.sealStage({
        outputUri,
        stage: row.stage,
        key,
        codeStage: material.code,
        artifact: spec.artifact(result, outputUri),
        inputs: spec.inputs,
        settings: spec.settings,
        producedBy: { experiment: input.name, workflowId, childWorkflowId },
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        result: result as z.core.util.JSONType,
      });
      update(row, { state: 'done', finishedAt: finishedAt.toISOString() });
      return { result, lineage };
    })();
    byKey.set(key, { rowId: row.id, outcome: outcome });
    return outcome;
  }

  const gpuBudgetCheck = (): void => {
    const cap = input.budget.gpuHours;
    if (cap !== undefined && status.spent.gpuHours >= cap) throw new BudgetReached(`GPU budget reached: ${status.spent.gpuHours.toFixed(3)} of ${cap} GPU hours spent`);
  };
  const lineageInput = (role: string, lineage: LineageRecord, lineageUri: string): LineageInput => ({ role, ...lineage.artifact, lineageUri });
  const outputs: ExperimentOutputs = { train: {}, campaign: {} };

  async function runAll(): Promise<void> {
    const [datasetSha] = await cpu.digestArtifacts({ artifacts: [{ kind: 'd_rob', uri: input.datasetUri }] });
    const relabelSettings = {
      labeler: input.relabel.labeler,
      maxReprompts: input.relabel.maxReprompts,
      aggregation: input.relabel.aggregation,
      ...(input.relabel.limit !== undefined && { limit: input.relabel.limit }),
    };
    const relabel = await runStage<RelabelDatasetResult>({
      row: rows.relabel,
      settings: relabelSettings,
      inputs: [{ role: 'dataset', kind: 'd_rob', uri: input.datasetUri, ...(datasetSha !== undefined && { sha256: datasetSha }) }],
      resultSchema: RelabelDatasetResult,
      childWorkflowId: (outputUri) => WorkflowIds.relabelDataset(input.datasetUri, labelerKey(input.relabel.labeler), outputUri),
      budgetCheck: () => {
        const cap = input.budget.geminiUsd;
        if (cap !== undefined && input.relabel.labeler.name === 'gemini' && status.spent.geminiUsd >= cap) throw new BudgetReached(`Gemini budget reached: $${status.spent.geminiUsd.toFixed(2)} of $${cap} spent`);
      },
      run: async (outputUri, childWorkflowId) => {
        const cap = input.budget.geminiUsd;
        const args: z.input<typeof RelabelDatasetInput> = {
          datasetUri: input.datasetUri,
          outputUri,
          ...relabelSettings,
          maxConcurrent: input.relabel.maxConcurrent,
          geminiTaskQueue: input.taskQueues.gemini,
          ...(cap !== undefined && input.relabel.labeler.name === 'gemini' && { budget: { usd: cap - status.spent.geminiUsd } }),
        };
        const result = await executeChild(relabelDataset, { ...stageOptions(childWorkflowId), args: [args] });
        // An unfinished relabel is not sealed: a re-run of the experiment resumes it.
        if (result.status === 'budget_exhausted') {
          status.spent.geminiUsd += result.usage.costUsd;
          rows.relabel.geminiUsd = result.usage.costUsd;
          throw new BudgetReached(`Gemini budget reached during relabeling: $${status.spent.geminiUsd.toFixed(2)} spent, ${result.counts.done} of ${result.counts.total} trajectories labelled`);
        }
        if (result.status !== 'completed') throw ApplicationFailure.nonRetryable(`relabeling stopped (${result.status}); its report: ${result.reportUri}`, ExperimentFailure.StageFailed);
        return result;
      },
      artifact: (result) => ({ kind: 'd_lan', uri: result.outputUri }),
      spent: (result) => ({ geminiUsd: result.usage.costUsd }),
    });
    outputs.relabel = relabel.result;

    const shard = await runStage<ShardDatasetResult>({
      row: rows.shard,
      settings: input.shard,
      inputs: [lineageInput('d_lan', relabel.lineage, rows.relabel.lineageUri!)],
      resultSchema: ShardDatasetResult,
      childWorkflowId: (outputUri) => WorkflowIds.shardDataset(outputUri),
      run: (outputUri, childWorkflowId) => {
        const args: z.input<typeof ShardDatasetInput> = { datasetUri: relabel.result.outputUri, outputUri, ...input.shard };
        return executeChild(shardDataset, { ...stageOptions(childWorkflowId), args: [args] });
      },
      artifact: (result) => ({ kind: 'shards', uri: result.manifestUri }),
    });
    outputs.shard = shard.result;

    const bases = baseModelNames(input.variants);
    const trained = new Map<string, StageOutcome<TrainLoraResult>>();
    const campaignOf = async (variant: TrainingVariant): Promise<void> => {
      const campaign = input.campaign;
      const campaignRow = rows.campaign.get(variant.name);
      if (!campaign || !campaignRow) return;
      const adapter = trained.get(variant.name)!;
      const fixed = campaign.policy !== 'variant';
      const policy: PolicySpecInput =
        campaign.policy === 'variant'
          ? {
              kind: 'model',
              model: { name: variant.name, backend: 'local', baseModel: variant.baseModel, adapter: adapter.result.adapterUri },
              actionRepresentation: variant.actionRepresentation,
              adapterUri: adapter.result.adapterUri,
              taskQueue: input.taskQueues.gpu,
            }
          : campaign.policy;
      const { policy: _choice, ...design } = campaign;
      const settings = { ...design, policy: fixed ? campaign.policy : { kind: 'variant', actionRepresentation: variant.actionRepresentation } };
      const result = await runStage<EvalCampaignResult>({
        row: campaignRow,
        settings: settings,
        inputs: fixed ? [] : [lineageInput('adapter', adapter.lineage, rows.train.get(variant.name)!.lineageUri!), { role: 'baseModel', kind: 'model', uri: variant.baseModel }],
        resultSchema: EvalCampaignResult,
        childWorkflowId: (outputUri) => WorkflowIds.evalCampaign(outputUri),
        run: (outputUri, childWorkflowId) => {
          const args: EvalCampaignInputRaw = {
            ...design,
            policy,
            outputUri,
            title: fixed ? `Robot evaluation (${campaign.policy === 'variant' ? '' : campaign.policy.kind} policy)` : `Robot evaluation of ${variant.name}`,
          };
          return executeChild(evalCampaign, { ...stageOptions(childWorkflowId), args: [args] });
        },
        artifact: (r) => ({ kind: 'campaign', uri: r.summaryUri }),
      });
      outputs.campaign[variant.name] = result.result;
    };

    const trainings = input.variants.map(async (variant) => {
      const { name: _name, ...settings } = variant;
      const outcome = await runStage<TrainLoraResult>({
        row: rows.train.get(variant.name)!,
        settings: settings,
        inputs: [lineageInput('shards', shard.lineage, rows.shard.lineageUri!), { role: 'baseModel', kind: 'model', uri: variant.baseModel }],
        resultSchema: TrainLoraResult,
        childWorkflowId: (outputUri) => WorkflowIds.trainLora(outputUri),
        budgetCheck: gpuBudgetCheck,
        run: (outputUri, childWorkflowId) => {
          const args: z.input<typeof TrainLoraInput> = { shardsUri: shard.result.manifestUri, outputUri, gpuTaskQueue: input.taskQueues.gpu, ...settings };
          return executeChild(trainLora, { ...stageOptions(childWorkflowId), args: [args] });
        },
        artifact: (result) => ({ kind: 'adapter', uri: result.adapterUri }),
        // The trainer's own runtime where it reports one; the stage's wall time otherwise. A CPU run (gpus 0) counts as one device.
        spent: (result, hours) => ({ gpuHours: ((result.metrics['train_runtime'] ?? hours * 3600) / 3600) * Math.max(1, variant.gpus) }),
      });
      trained.set(variant.name, outcome);
      outputs.train[variant.name] = outcome.result;
    });
    // Each variant's campaign starts as soon as its adapter exists, next to the other trainings and the sweep.
    const campaigns = trainings.map((training, i) => training.then(() => campaignOf(input.variants[i]!)));
    const trainingsSettled = await Promise.allSettled(trainings);
    const sweep = trainingsSettled.every((t) => t.status === 'fulfilled') && input.vqa ? runSweep(bases, trained) : Promise.resolve();
    const settled = [...trainingsSettled, ...(await Promise.allSettled([sweep, ...campaigns]))];
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) throw failure.reason;
  }

  async function runSweep(bases: Map<string, string>, trained: Map<string, StageOutcome<TrainLoraResult>>): Promise<void> {
    const vqa = input.vqa!;
    const models: ModelSpec[] = [
      ...[...bases].map(([baseModel, name]): ModelSpec => ({ name, backend: 'local', baseModel })),
      ...input.variants.map((v): ModelSpec => ({ name: v.name, backend: 'local', baseModel: v.baseModel, adapter: trained.get(v.name)!.result.adapterUri, baseOf: bases.get(v.baseModel)! })),
    ];
    const settings = {
      models: models.map((m) => ({ name: m.name, ...(m.backend === 'local' && m.baseOf !== undefined && { baseOf: m.baseOf }) })),
      benchmarks: vqa.benchmarks,
      ...(vqa.limit !== undefined && { limit: vqa.limit }),
      ...(vqa.retentionThreshold !== undefined && { retentionThreshold: vqa.retentionThreshold }),
    };
    const result = await runStage<VqaSweepResult>({
      row: rows.vqa!,
      settings,
      inputs: [
        ...input.variants.map((v) => lineageInput(`adapter:${v.name}`, trained.get(v.name)!.lineage, rows.train.get(v.name)!.lineageUri!)),
        ...[...bases].map(([baseModel, name]): LineageInput => ({ role: `baseModel:${name}`, kind: 'model', uri: baseModel })),
        ...vqa.benchmarks.map((b): LineageInput => ({ role: `benchmark:${b.benchmark}`, kind: 'benchmark', uri: b.uri })),
      ],
      resultSchema: VqaSweepResult,
      childWorkflowId: (outputUri) => WorkflowIds.vqaSweep(outputUri),
      budgetCheck: gpuBudgetCheck,
      run: (outputUri, childWorkflowId) => {
        const args: VqaSweepRequest = {
          models,
          benchmarks: vqa.benchmarks,
          outputUri,
          ...(vqa.limit !== undefined && { limit: vqa.limit }),
          concurrency: vqa.concurrency,
          ...(vqa.batchSize !== undefined && { batchSize: vqa.batchSize }),
          maxConcurrentEvaluations: vqa.maxConcurrentEvaluations,
          ...(vqa.retentionThreshold !== undefined && { retentionThreshold: vqa.retentionThreshold }),
          taskQueues: { local: input.taskQueues.gpu },
        };
        return executeChild(vqaSweep, { ...stageOptions(childWorkflowId), args: [args] });
      },
      artifact: (_result, outputUri) => ({ kind: 'vqa', uri: outputUri }),
      spent: (_result, hours) => ({ gpuHours: hours }),
    });
    outputs.vqa = result.result;
  }

  let failure: unknown;
  try {
    await runAll();
    setState('completed');
  } catch (err) {
    failure = err;
    setState(isCancellation(err) ? 'cancelled' : err instanceof BudgetReached ? 'budget_exhausted' : 'failed');
    status.error = err instanceof BudgetReached ? err.message : rootCause(err);
    for (const r of status.stages) {
      if (r.state === 'pending') update(r, { state: 'skipped', detail: `not started: the experiment ${status.state === 'budget_exhausted' ? 'ran out of budget' : status.state}` });
      if (r.state === 'running') update(r, { state: status.state === 'cancelled' ? 'cancelled' : 'failed' });
    }
  }
  status.pauseRequested = false;
  // The report is written whatever happened, a cancellation included: it says where the experiment stopped.
  const written = await CancellationScope.nonCancellable(() => cpu.writeExperimentReport({ input, status, outputs }));
  status.reportUri = written.reportUri;
  if (status.state === 'cancelled') throw failure;
  if (status.state === 'failed') {
    // The root cause's type (e.g. ExperimentStageBusy, a training's BaseModelNotFound) is the experiment's, for filters and alerts.
    throw ApplicationFailure.nonRetryable(`experiment ${input.name} failed: ${status.error ?? 'unknown'}; report: ${written.reportUri}`, rootFailure(failure)?.type ?? ExperimentFailure.StageFailed);
  }
  return { ...status, reportUri: written.reportUri, statusUri: written.statusUri };
}
