/**
 * The `trainLora` activity (GPU workers, task queue `vla-gpu`): stages the shards (and a base model
 * given as an s3:// directory), resumes from the
 * run's last checkpoint in the store, runs the Python trainer (python/vla_py/train) as a child
 * process in its own process group, heartbeats its JSON-line progress, uploads each checkpoint as
 * it appears, and finally the adapter, metrics and result.
 *
 * Layout of a run at `outputUri`:
 *   config.json                               the exact input, git revision, shard set (first attempt)
 *   checkpoints/checkpoint-<step:08d>/...     trainer checkpoints (adapter + optimizer + RNG state)
 *   checkpoints/checkpoint-<step:08d>.json    marker written after the checkpoint's files: only
 *                                             checkpoints with a marker are resumed from
 *   adapter/...                               the final adapter (PeftModel.from_pretrained / vLLM)
 *   metrics.json                              per-step metrics of the final attempt + final metrics
 *   result.json                               TrainLoraResult, written last
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { Sha256Hex } from '../../data-schemas/common';
import { SHARD_MANIFEST_FILE, ShardManifest, type ShardEntry } from '../../data-schemas/shard';
import { TrainerEvent, TrainingFailure, TrainLoraInput, TrainLoraResult, type TrainingProgress } from '../../data-schemas/training';
import { joinUri } from '../../data-schemas/uri';
import type { PythonEnv } from '../runtime/python-env';
import { stopByPidFile, stopProcess, writePidFile } from '../runtime/processes';
import { classifyActivityError } from '../failures';
import { recordTrainingStep } from '../../data-schemas/metrics';
import { getJson, getJsonIfExists, InvalidObjectError, ObjectNotFoundError, parseStoredJson, putJson, sha256Hex, sha256HexOfStream, stageDirectory } from '../store';
import type { ObjectStore } from '../store/types';

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

const CheckpointMarker = z.strictObject({
  step: z.int().nonnegative(),
  files: z.array(z.strictObject({ path: z.string().min(1), sha256: Sha256Hex, bytes: z.int().nonnegative() })),
  attempt: z.int().positive(),
  writtenAt: z.string(),
});
type CheckpointMarker = z.infer<typeof CheckpointMarker>;

const RunConfig = z.object({ input: TrainLoraInput, gitRevision: z.string(), shardsManifestSha256: Sha256Hex, createdAt: z.string() });

const CHECKPOINT_DIR = 'checkpoints';
const checkpointName = (step: number): string => `checkpoint-${String(step).padStart(8, '0')}`;
const STDERR_LINES_KEPT = 40;

/** Heartbeat details: what the UI shows for the pending activity, and what a retry starts from. */
interface TrainingHeartbeat {
  progress: TrainingProgress;
}

export function createTrainingActivities(deps: TrainingDeps) {
  const { store } = deps;

  async function trainLora(rawInput: TrainLoraInput): Promise<TrainLoraResult> {
    try {
      return await trainLoraUnclassified(rawInput);
    } catch (err) {
      // Every error, from the first read of the output on: a store that refuses the output
      // (no credentials, no bucket) fails at once instead of after every retry.
      throw classifyActivityError(err);
    }
  }

  async function trainLoraUnclassified(rawInput: TrainLoraInput): Promise<TrainLoraResult> {
    const input = TrainLoraInput.parse(rawInput);
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
      const { manifest, manifestSha256 } = await readShardManifest(input.shardsUri);
      await recordRunConfig(input, manifestSha256);

      const runDir = join(deps.workDir, 'runs', sha256Hex(input.outputUri).slice(0, 16));
      await stopOrphanedTrainer(runDir);
      const outputDir = join(runDir, 'output');
      rmSync(outputDir, { recursive: true, force: true });
      mkdirSync(outputDir, { recursive: true });

      const staged = await stageShards(input.shardsUri, manifest.shards, ctx.cancellationSignal);
      const baseModelDir = input.baseModel.startsWith('s3://') ? await stageBaseModel(input.baseModel) : undefined;
      const resume = await downloadLastCheckpoint(input.outputUri, join(outputDir, CHECKPOINT_DIR));
      report({ ...progress, phase: 'training', step: resume?.step ?? 0, ...(resume && { lastCheckpointStep: resume.step, resumedFromStep: resume.step }) }, 'now');

      const trainerConfig = trainerConfigFor(input, {
        trainShards: staged.filter((s) => s.entry.split === 'train').map((s) => s.localPath),
        validationShards: staged.filter((s) => s.entry.split === 'validation').map((s) => s.localPath),
        outputDir,
        resumeFrom: resume?.dir ?? null,
        gitRevision: deps.gitRevision,
        ...(baseModelDir !== undefined && { baseModelDir }),
      });
      const configPath = join(runDir, 'trainer-config.json');
      writeFileSync(configPath, `${JSON.stringify(trainerConfig, null, 2)}\n`);

      const shardByLocalPath = new Map(staged.map((s) => [s.localPath, s.entry.path]));
      const outcome = await runTrainer({
        runDir,
        configPath,
        gpus: input.gpus,
        distributed: input.distributed,
        precision: input.precision,
        signal: ctx.cancellationSignal,
        onEvent: (event, uploads) => {
          switch (event.event) {
            case 'start':
              report({ ...progress, totalSteps: event.totalSteps, step: event.resumedFromStep }, 'now');
              return;
            case 'step':
              recordTrainingStep(ctx.metricMeter, event);
              report({
                ...progress,
                step: event.step,
                totalSteps: event.totalSteps,
                loss: event.loss,
                lr: event.lr,
                tokensPerSecond: event.tokensPerSecond,
                etaSeconds: event.etaSeconds,
              });
              return;
            case 'checkpoint':
              uploads.push(async () => {
                await uploadCheckpoint(input.outputUri, event.dir, event.step, attempt);
                report({ ...progress, lastCheckpointStep: event.step }, 'now');
              });
              return;
            default:
              return;
          }
        },
      });

      if (outcome.kind === 'cancelled') {
        throw ctx.cancellationSignal.reason instanceof CancelledFailure ? ctx.cancellationSignal.reason : new CancelledFailure('training cancelled; the trainer was stopped');
      }
      if (outcome.kind === 'failed') throw trainerFailure(outcome, shardByLocalPath);

      report({ ...progress, phase: 'uploading', step: outcome.done.step }, 'now');
      const adapterUri = joinUri(input.outputUri, 'adapter');
      await uploadDirectory(outcome.done.adapterDir, adapterUri);
      const lastStep = outcome.steps.at(-1);
      await putJson(store, joinUri(input.outputUri, 'metrics.json'), { attempt, final: outcome.done.metrics, steps: outcome.steps });
      const result: TrainLoraResult = {
        runUri: input.outputUri,
        adapterUri,
        resultUri,
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

  async function readShardManifest(shardsUri: string): Promise<{ manifest: ShardManifest; manifestSha256: string }> {
    let bytes: Buffer;
    try {
      bytes = await store.get(shardsUri);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw ApplicationFailure.nonRetryable(`no shard set at ${shardsUri} (run shardDataset first; its result names the ${SHARD_MANIFEST_FILE})`, TrainingFailure.shardsNotFound);
      }
      throw err;
    }
    let manifest: ShardManifest;
    try {
      manifest = parseStoredJson(shardsUri, bytes, ShardManifest, `a shard manifest, the ${SHARD_MANIFEST_FILE} that shardDataset writes`);
    } catch (err) {
      if (err instanceof InvalidObjectError) throw ApplicationFailure.nonRetryable(err.message, TrainingFailure.shardsNotFound);
      throw err;
    }
    if (!manifest.shards.some((s) => s.split === 'train')) throw ApplicationFailure.nonRetryable(`${shardsUri} lists no train shard`, TrainingFailure.shardsNotFound);
    return { manifest, manifestSha256: sha256Hex(bytes) };
  }

  /** The first attempt records the run's config; a later run with a different config at the same output is refused. */
  async function recordRunConfig(input: TrainLoraInput, shardsManifestSha256: string): Promise<void> {
    const uri = joinUri(input.outputUri, 'config.json');
    const config = { input, gitRevision: deps.gitRevision, shardsManifestSha256, createdAt: new Date().toISOString() };
    const put = await putJson(store, uri, config, { ifAbsent: true });
    if (put.created) return;
    const existing = await getJson(store, uri, RunConfig);
    const comparable = (i: TrainLoraInput): string => JSON.stringify({ ...i, progressEverySeconds: 0, retry: null });
    if (comparable(existing.input) !== comparable(input) || existing.shardsManifestSha256 !== shardsManifestSha256) {
      throw ApplicationFailure.nonRetryable(
        `${input.outputUri} already holds a training run with a different configuration or shard set (see its config.json); choose a new outputUri`,
        TrainingFailure.runConfigMismatch,
      );
    }
  }

  /** Downloads each shard once per machine (cached by sha256), verifying it on the way. */
  async function stageShards(shardsUri: string, shards: ShardEntry[], signal: AbortSignal): Promise<{ entry: ShardEntry; localPath: string }[]> {
    const cacheDir = join(deps.workDir, 'shards');
    mkdirSync(cacheDir, { recursive: true });
    const root = dirname(shardsUri.endsWith('/') ? shardsUri.slice(0, -1) : shardsUri);
    const staged: { entry: ShardEntry; localPath: string }[] = [];
    for (const entry of shards) {
      if (signal.aborted) break;
      const localPath = join(cacheDir, `${entry.sha256}.tar`);
      if (!existsSync(localPath)) {
        const uri = joinUri(root, entry.path);
        const partial = `${localPath}.partial-${process.pid}`;
        // A failed download (a full disk, a lost connection) leaves no partial file behind.
        const sha256 = await downloadTo(uri, partial).catch((err: unknown) => {
          rmSync(partial, { force: true });
          throw err;
        });
        if (sha256 !== entry.sha256) {
          rmSync(partial, { force: true });
          throw ApplicationFailure.nonRetryable(
            `corrupt shard ${entry.path}: its sha256 is ${sha256} but the shard manifest lists ${entry.sha256} (re-run shardDataset into a new output)`,
            TrainingFailure.corruptShard,
          );
        }
        renameSync(partial, localPath);
      }
      staged.push({ entry, localPath });
      Context.current().heartbeat();
    }
    return staged;
  }

  /** A base model stored as an s3:// directory, downloaded once per machine under the work dir. */
  async function stageBaseModel(uri: string): Promise<string> {
    const dir = await stageDirectory(store, uri, { cacheRoot: join(deps.workDir, 'models'), required: 'config.json', onFile: () => Context.current().heartbeat() });
    if (dir === undefined) {
      throw ApplicationFailure.nonRetryable(`base model not found: ${uri} holds no model directory (no config.json under it)`, TrainingFailure.baseModelNotFound);
    }
    return dir;
  }

  /** Streams an object to a local file and returns the sha256 of what was written. */
  async function downloadTo(uri: string, path: string): Promise<string> {
    const hash = createHash('sha256');
    const body = await store.getStream(uri);
    body.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, createWriteStream(path));
    return hash.digest('hex');
  }

  async function downloadLastCheckpoint(outputUri: string, localCheckpoints: string): Promise<{ step: number; dir: string } | undefined> {
    const prefix = joinUri(outputUri, CHECKPOINT_DIR, 'checkpoint-');
    let marker: CheckpointMarker | undefined;
    let markerName: string | undefined;
    for await (const info of store.list(prefix)) {
      const name = info.uri.slice(prefix.length - 'checkpoint-'.length);
      if (!/^checkpoint-\d{8}\.json$/.test(name)) continue;
      const candidate = await getJson(store, info.uri, CheckpointMarker);
      if (!marker || candidate.step > marker.step) {
        marker = candidate;
        markerName = name.slice(0, -'.json'.length);
      }
    }
    if (!marker || !markerName) return undefined;
    const dir = join(localCheckpoints, markerName);
    for (const file of marker.files) {
      const target = join(dir, ...file.path.split('/'));
      mkdirSync(dirname(target), { recursive: true });
      const sha256 = await downloadTo(joinUri(outputUri, CHECKPOINT_DIR, markerName, file.path), target);
      if (sha256 !== file.sha256) {
        // The same stored bytes fail the same way on every attempt.
        throw new InvalidObjectError(joinUri(outputUri, CHECKPOINT_DIR, markerName, file.path), `sha256 ${sha256} differs from its marker's ${file.sha256}; delete ${joinUri(outputUri, CHECKPOINT_DIR, `${markerName}.json`)} to resume from an earlier checkpoint`);
      }
    }
    return { step: marker.step, dir };
  }

  async function uploadCheckpoint(outputUri: string, localDir: string, step: number, attempt: number): Promise<void> {
    const name = checkpointName(step);
    const files = await uploadDirectory(localDir, joinUri(outputUri, CHECKPOINT_DIR, name));
    const marker: CheckpointMarker = { step, files, attempt, writtenAt: new Date().toISOString() };
    await putJson(store, joinUri(outputUri, CHECKPOINT_DIR, `${name}.json`), marker);
  }

  /** Uploads every file under `localDir` (multipart for large ones) and lists them with their sha256. */
  async function uploadDirectory(localDir: string, targetUri: string): Promise<CheckpointMarker['files']> {
    const files: CheckpointMarker['files'] = [];
    for (const abs of walkFiles(localDir)) {
      const path = relative(localDir, abs).split(sep).join('/');
      const { sha256 } = await sha256HexOfStream(createReadStream(abs));
      await store.putStream(joinUri(targetUri, path), createReadStream(abs));
      files.push({ path, sha256, bytes: statSync(abs).size });
      Context.current().heartbeat();
    }
    return files;
  }

  /** A trainer left running by a worker that died: stop it before starting another on the same files (only if its PID file still matches it). */
  async function stopOrphanedTrainer(runDir: string): Promise<void> {
    const outcome = await stopByPidFile(join(runDir, 'trainer.pid'), { graceMs: deps.killGraceMs ?? 30_000 });
    if (outcome.kind === 'still-alive') throw new Error(`the trainer left running in ${runDir} would not stop: ${outcome.reason}`);
  }

  interface TrainerRun {
    runDir: string;
    configPath: string;
    gpus: number;
    distributed: TrainLoraInput['distributed'];
    precision: TrainLoraInput['precision'];
    signal: AbortSignal;
    onEvent: (event: TrainerEvent, uploads: { push: (job: () => Promise<void>) => void }) => void;
  }

  type TrainerOutcome =
    | { kind: 'done'; done: Extract<TrainerEvent, { event: 'done' }>; steps: Extract<TrainerEvent, { event: 'step' }>[] }
    | { kind: 'cancelled' }
    | { kind: 'failed'; code: number | null; signal: NodeJS.Signals | null; error?: Extract<TrainerEvent, { event: 'error' }>; stderr: string[] };

  async function runTrainer(run: TrainerRun): Promise<TrainerOutcome> {
    const env = await deps.pythonEnv();
    const launch =
      run.gpus > 1
        ? [
            '-m',
            'accelerate.commands.launch',
            '--num_processes',
            String(run.gpus),
            ...(run.distributed === 'deepspeed-zero2' ? ['--use_deepspeed', '--zero_stage', '2'] : run.distributed === 'fsdp' ? ['--use_fsdp'] : ['--multi_gpu']),
            ...(run.precision === 'fp32' ? [] : ['--mixed_precision', run.precision]),
            '-m',
            'vla_py.train',
          ]
        : ['-m', 'vla_py.train'];
    const child: ChildProcess = spawn(env.python, [...launch, '--config', run.configPath], {
      cwd: run.runDir,
      // Its own process group: cancellation stops the trainer and everything it started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...env.env, VLA_PARENT_PID: String(process.pid) },
    });
    if (child.pid === undefined) throw new Error(`could not start the trainer (${env.python})`);
    const pid = child.pid;
    writePidFile(join(run.runDir, 'trainer.pid'), pid, { argv: [env.python, ...launch, '--config', run.configPath], groupLeader: true });

    const stderr: string[] = [];
    const stderrLog = createWriteStream(join(run.runDir, 'trainer.stderr.log'), { flags: 'a' });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrLog.write(`${line}\n`);
      stderr.push(line);
      if (stderr.length > STDERR_LINES_KEPT) stderr.shift();
    });

    let chain = Promise.resolve();
    let uploadError: Error | undefined;
    const uploads = {
      // Checkpoints upload one at a time, in order, while training goes on.
      push: (job: () => Promise<void>) => {
        chain = chain.then(job).catch((err: unknown) => {
          uploadError ??= err instanceof Error ? err : new Error(String(err));
        });
      },
    };
    const steps: Extract<TrainerEvent, { event: 'step' }>[] = [];
    let done: Extract<TrainerEvent, { event: 'done' }> | undefined;
    let error: Extract<TrainerEvent, { event: 'error' }> | undefined;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let parsed: ReturnType<typeof TrainerEvent.safeParse> | undefined;
      try {
        parsed = TrainerEvent.safeParse(JSON.parse(line));
      } catch {
        parsed = undefined;
      }
      if (!parsed?.success) {
        stderr.push(line);
        return;
      }
      const event = parsed.data;
      if (event.event === 'step') steps.push(event);
      if (event.event === 'done') done = event;
      if (event.event === 'error') error = event;
      run.onEvent(event, uploads);
    });

    let cancelled = false;
    const onAbort = (): void => {
      cancelled = true;
      void stopProcess(pid, { group: true, graceMs: deps.killGraceMs ?? 30_000 }).catch(() => undefined);
    };
    run.signal.addEventListener('abort', onAbort, { once: true });
    if (run.signal.aborted) onAbort();
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    run.signal.removeEventListener('abort', onAbort);
    // The group may still hold launcher children; nothing of this run may outlive it.
    await stopProcess(pid, { group: true, graceMs: 1_000 }).catch(() => undefined);
    rmSync(join(run.runDir, 'trainer.pid'), { force: true });
    await chain;
    stderrLog.end();
    if (cancelled) return { kind: 'cancelled' };
    if (uploadError) throw uploadError;
    if (code === 0 && done) return { kind: 'done', done, steps };
    return { kind: 'failed', code, signal, ...(error && { error }), stderr };
  }

  function trainerFailure(outcome: Extract<TrainerOutcome, { kind: 'failed' }>, shardByLocalPath: Map<string, string>): ApplicationFailure {
    const tail = outcome.stderr.slice(-15).join('\n');
    const e = outcome.error;
    switch (e?.code) {
      case 'base_model_not_found':
        return ApplicationFailure.nonRetryable(`base model not found: ${e.message}`, TrainingFailure.baseModelNotFound);
      case 'out_of_memory':
        return ApplicationFailure.nonRetryable(`out of GPU memory: ${e.message}`, TrainingFailure.outOfMemory);
      case 'corrupt_shard': {
        const shard = e.shard !== undefined ? (shardByLocalPath.get(e.shard) ?? e.shard) : 'unknown shard';
        return ApplicationFailure.nonRetryable(`corrupt shard ${shard}: ${e.message}`, TrainingFailure.corruptShard);
      }
      case 'bad_config':
        return ApplicationFailure.nonRetryable(`the trainer refused its config: ${e.message}`, TrainingFailure.badConfig);
      default:
        break;
    }
    if (outcome.signal !== null || e?.code === 'interrupted') {
      return ApplicationFailure.retryable(`the trainer was stopped (${outcome.signal ?? 'interrupted'}); the next attempt resumes from the last checkpoint${tail ? `\nlast stderr lines:\n${tail}` : ''}`, TrainingFailure.trainerKilled);
    }
    return ApplicationFailure.retryable(`the trainer exited with code ${outcome.code}${e ? `: ${e.message}` : ''}\nlast stderr lines:\n${tail}`, TrainingFailure.trainerCrashed);
  }

  return { trainLora };
}

/** The trainer's config file (python/vla_py/train/config.py reads it): the input plus this machine's paths. */
export function trainerConfigFor(
  input: TrainLoraInput,
  local: {
    trainShards: string[];
    validationShards: string[];
    outputDir: string;
    resumeFrom: string | null;
    gitRevision: string;
    /** Where an s3:// base model was staged on this machine; the input's model otherwise. */
    baseModelDir?: string;
  },
) {
  return {
    baseModel: local.baseModelDir ?? input.baseModel,
    trainShards: local.trainShards,
    validationShards: local.validationShards,
    outputDir: local.outputDir,
    resumeFrom: local.resumeFrom,
    lora: { rank: input.lora.rank, alpha: input.lora.alpha, dropout: input.lora.dropout, targetModules: input.lora.targetModules ?? null },
    learningRate: input.learningRate,
    warmupSteps: input.warmupSteps,
    weightDecay: input.weightDecay,
    epochs: input.epochs,
    maxSteps: input.maxSteps ?? null,
    perDeviceBatchSize: input.perDeviceBatchSize,
    gradientAccumulationSteps: input.gradientAccumulationSteps,
    precision: input.precision,
    maxSequenceLength: input.maxSequenceLength,
    seed: input.seed,
    checkpointEvery: input.checkpointEvery,
    actionRepresentation: input.actionRepresentation,
    gpus: input.gpus,
    distributed: input.distributed,
    modelCard: { runUri: input.outputUri, shardsUri: input.shardsUri, gitRevision: local.gitRevision, baseModel: input.baseModel },
  };
}

function* walkFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const abs = join(dir, entry.name);
    if (entry.isDirectory()) yield* walkFiles(abs);
    else if (entry.isFile()) yield abs;
  }
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

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
