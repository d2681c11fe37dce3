/**
 * The `trainLora` activity (GPU workers, task queue `vla-gpu`): stages the shards (and a base model
 * given as an s3:// directory), resumes from the
 * run's last checkpoint in the store, runs the Python trainer (python/vla_py/train) as a child
 * process in its own process group, heartbeats its JSON-line progress, uploads each checkpoint as
 * it appears, and finally the adapter, metrics and result. The steps are the named functions of
 * run-files.ts (the store), trainer-config.ts, trainer-process.ts and trainer-events.ts; this file
 * only puts them in order.
 *
 * Layout of a run at `outputUri` (the formats: data-schemas/training.ts):
 *   config.json                               TrainingRunConfig: the exact input, git revision, shard set (first attempt)
 *   checkpoints/checkpoint-<step:08d>/...     trainer checkpoints (adapter + optimizer + RNG state)
 *   checkpoints/checkpoint-<step:08d>.json    CheckpointMarker, written after the checkpoint's files:
 *                                             only checkpoints with a marker are resumed from
 *   adapter/...                               the final adapter (PeftModel.from_pretrained / vLLM);
 *                                             adapter/training_config.json is the TrainerConfig it was trained with
 *   tensorboard/events.out.tfevents.*         TensorBoard event files (loss, learning rate, eval loss), uploaded with
 *                                             every checkpoint and at the end; each attempt adds its own files
 *   metrics.json                              TrainingMetrics: per-step and eval metrics of the final attempt + final metrics
 *   result.json                               TrainLoraResult, written last
 */
import { CancelledFailure, Context } from '@temporalio/activity';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT_DIR, TENSORBOARD_DIR, TrainingActivities, TrainLoraResult, type TrainLoraInput, type TrainingMetrics, type TrainingProgress } from '../../data-schemas/training';
import { joinUri } from '../../data-schemas/uri';
import type { PythonEnv } from '../runtime/python-env';
import { classifyActivityError } from '../failures';
import { implement } from '../../data-schemas/activity-contract';
import { recordTrainingStep } from '../../data-schemas/metrics';
import { getJsonIfExists, putJson, sha256Hex } from '../store';
import type { ObjectStore } from '../store/types';
import { downloadLastCheckpoint, readShardManifest, recordRunConfig, stageBaseModel, stageShards, uploadCheckpoint, uploadDirectory } from './run-files';
import { trainerConfigFileText, trainerConfigFor } from './trainer-config';
import { progressAfter, trainerFailure } from './trainer-events';
import { runTrainer, stopOrphanedTrainer } from './trainer-process';

export { trainerConfigFor } from './trainer-config';

export interface TrainingDeps {
  store: ObjectStore;
  /** Local scratch of this GPU machine: staged shards (cached by sha256) and the running trainer's files. */
  workDir: string;
  /** The project's Python environment (built once, cached outside the clone). */
  pythonEnv: () => Promise<PythonEnv>;
  /** The code revision recorded with every run. */
  gitRevision: string;
  /** Sends live progress to the running workflow (a signal); without it, only heartbeats carry progress. */
  reportProgress?: (execution: { workflowId: string; runId: string }, progress: TrainingProgress) => Promise<void>;
  /** SIGTERM, then SIGKILL after this long, when the workflow is cancelled. @default 30_000 */
  killGraceMs?: number;
  /** Frees what would compete with the trainer for the GPU (the worker's loaded inference models). */
  beforeTrainer?: () => Promise<void>;
}

/** Heartbeat details: what the UI shows for the pending activity, and what a retry starts from. */
interface TrainingHeartbeat {
  progress: TrainingProgress;
}

export function createTrainingActivities(deps: TrainingDeps) {
  const { store } = deps;
  const killGraceMs = deps.killGraceMs ?? 30_000;

  async function trainLora(parsedInput: TrainLoraInput): Promise<TrainLoraResult> {
    try {
      return await trainLoraUnclassified(parsedInput);
    } catch (err) {
      // Every error, from the first read of the output on: a store that refuses the output
      // (no credentials, no bucket) fails at once instead of after every retry.
      throw classifyActivityError(err);
    }
  }

  async function trainLoraUnclassified(input: TrainLoraInput): Promise<TrainLoraResult> {
    const ctx = Context.current();
    const attempt = ctx.info.attempt;
    const resultUri = joinUri(input.outputUri, 'result.json');
    const finished = await getJsonIfExists(store, resultUri, TrainLoraResult);
    if (finished) return finished;

    let progress: TrainingProgress = { phase: 'starting', attempt, step: 0, totalSteps: 0 };
    let lastSignalAt = 0;
    const report = (next: TrainingProgress, signal: 'now' | 'throttled' | 'never' = 'throttled'): void => {
      progress = next;
      ctx.heartbeat({ progress } satisfies TrainingHeartbeat);
      const due = signal === 'now' || (signal === 'throttled' && Date.now() - lastSignalAt >= input.progressEverySeconds * 1000);
      const execution = ctx.info.workflowExecution;
      if (due && deps.reportProgress && execution) {
        lastSignalAt = Date.now();
        // Progress is best effort: a failed signal must never fail the training.
        deps.reportProgress({ workflowId: execution.workflowId, runId: execution.runId }, progress).catch((err: unknown) => {
          ctx.log.warn('progress signal failed', { error: String(err) });
        });
      }
    };
    // Keeps the heartbeat alive through long steps and downloads, and lets cancellation arrive.
    const keepAlive = setInterval(() => ctx.heartbeat({ progress } satisfies TrainingHeartbeat), 5_000);
    try {
      // This activity holds the worker's one slot from here on: nothing else may keep GPU memory.
      await deps.beforeTrainer?.();
      report({ ...progress, phase: 'staging' }, 'now');
      const { manifest, manifestSha256 } = await readShardManifest(store, input.shardsUri);
      await recordRunConfig(store, input, deps.gitRevision, manifestSha256);

      const runDir = join(deps.workDir, 'runs', sha256Hex(input.outputUri).slice(0, 16));
      await stopOrphanedTrainer(runDir, killGraceMs);
      const outputDir = join(runDir, 'output');
      rmSync(outputDir, { recursive: true, force: true });
      mkdirSync(outputDir, { recursive: true });

      const heartbeat = (): void => Context.current().heartbeat();
      const staged = await stageShards(store, { shardsUri: input.shardsUri, shards: manifest.shards, cacheDir: join(deps.workDir, 'shards'), signal: ctx.cancellationSignal, onFile: heartbeat });
      const baseModelDir = input.baseModel.startsWith('s3://') ? await stageBaseModel(store, input.baseModel, join(deps.workDir, 'models'), heartbeat) : undefined;
      const resume = await downloadLastCheckpoint(store, input.outputUri, join(outputDir, CHECKPOINT_DIR));
      const validation = manifest.shards.some((s) => s.split === 'validation');
      report({ ...progress, phase: 'training', validation, step: resume?.step ?? 0, ...(resume && { lastCheckpointStep: resume.step, resumedFromStep: resume.step }) }, 'now');

      const validationShards = staged.filter((s) => s.entry.split === 'validation').map((s) => s.localPath);
      if (!validation) ctx.log.info(`${input.shardsUri} has no validation split: training without evaluation`);
      const trainerConfig = trainerConfigFor(input, {
        trainShards: staged.filter((s) => s.entry.split === 'train').map((s) => s.localPath),
        validationShards,
        outputDir,
        resumeFrom: resume?.dir ?? null,
        gitRevision: deps.gitRevision,
        ...(baseModelDir !== undefined && { baseModelDir }),
      });
      const configPath = join(runDir, 'trainer-config.json');
      writeFileSync(configPath, trainerConfigFileText(trainerConfig));

      const tensorboardUri = joinUri(input.outputUri, TENSORBOARD_DIR);
      const tensorboardDir = join(outputDir, TENSORBOARD_DIR);
      // The event files so far, so a running (or lost) run can be watched from the store.
      const uploadTensorboard = async (): Promise<void> => {
        if (existsSync(tensorboardDir)) await uploadDirectory(store, tensorboardDir, tensorboardUri, heartbeat);
      };
      const shardByLocalPath = new Map(staged.map((s) => [s.localPath, s.entry.path]));
      const outcome = await runTrainer({
        env: await deps.pythonEnv(),
        runDir,
        configPath,
        launch: input,
        signal: ctx.cancellationSignal,
        killGraceMs,
        onEvent: (event, uploads) => {
          if (event.event === 'step') recordTrainingStep(ctx.metricMeter, event);
          const next = progressAfter(progress, event);
          // The start and each (rare) evaluation are shown at once; steps at the progress interval.
          if (next) report(next, event.event === 'step' ? 'throttled' : 'now');
          if (event.event === 'checkpoint') {
            uploads.push(async () => {
              await uploadCheckpoint(store, { outputUri: input.outputUri, localDir: event.dir, step: event.step, attempt }, heartbeat);
              await uploadTensorboard();
              report({ ...progress, lastCheckpointStep: event.step }, 'now');
            });
          }
        },
      });

      if (outcome.kind === 'cancelled') {
        throw ctx.cancellationSignal.reason instanceof CancelledFailure ? ctx.cancellationSignal.reason : new CancelledFailure('training cancelled; the trainer was stopped');
      }
      if (outcome.kind === 'failed') throw trainerFailure(outcome, shardByLocalPath);

      report({ ...progress, phase: 'uploading', step: outcome.done.step }, 'now');
      const adapterUri = joinUri(input.outputUri, 'adapter');
      await uploadDirectory(store, outcome.done.adapterDir, adapterUri, heartbeat);
      await uploadTensorboard();
      const lastStep = outcome.steps.at(-1);
      const metrics: TrainingMetrics = { attempt, final: outcome.done.metrics, steps: outcome.steps, evals: outcome.evals };
      await putJson(store, joinUri(input.outputUri, 'metrics.json'), metrics);
      const result: TrainLoraResult = {
        runUri: input.outputUri,
        adapterUri,
        resultUri,
        ...(existsSync(tensorboardDir) && { tensorboardUri }),
        steps: outcome.done.step,
        ...(lastStep && { finalLoss: lastStep.loss }),
        metrics: outcome.done.metrics,
        gitRevision: deps.gitRevision,
        actionRepresentation: input.actionRepresentation,
        attempts: attempt,
        resumedFromStep: resume?.step ?? 0,
      };
      const put = await putJson(store, resultUri, result, { ifAbsent: true });
      report({ ...progress, phase: 'done', step: outcome.done.step }, 'now');
      return put.created ? result : ((await getJsonIfExists(store, resultUri, TrainLoraResult)) ?? result);
    } finally {
      clearInterval(keepAlive);
    }
  }

  return implement(TrainingActivities, 'gpu', { trainLora });
}

/**
 * The git revision of the running code, recorded with every training run and model card:
 * `<commit>`, or `<commit>-dirty` when a tracked file differs from it (staged or not), or
 * "unknown" outside a git checkout. Ignored and untracked files never make it dirty: they are
 * no part of any revision (outputs, caches, notes), and counting them would mark every run dirty.
 */
export function gitRevisionOf(repoRoot: string): string {
  try {
    const revision = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${revision}-dirty` : revision;
  } catch {
    return 'unknown';
  }
}

