import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createObjectStore, getJson } from '../../activities/store';
import { createLocalBackend } from '../../activities/vqa/backends/local';
import type { ObjectStore } from '../../activities/store/types';
import { ShardManifest, TrainingFailure, TrainingMetrics, TrainLoraResult, type TrainingProgress } from '../../data-schemas/training';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { loadConfig } from '../../infra/config';
import { inspectPidFile, isAlive } from '../../activities/runtime/processes';
import { ensurePythonEnv } from '../../infra/python';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { buildTinyModel } from '../../cli/commands/train';
import { trainingProgressQuery, type relabelDataset, type shardDataset, type trainLora } from '../../workflows';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';
import { importBridgeSample } from '../helpers/datasets';
import { applicationFailureOf } from '../helpers/failures';
import { connectTestTemporal, recordHistory, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuAndGpuWorkers } from '../helpers/workers';

const exec = promisify(execFile);

/** Loads the base model and the stored adapter with peft; reports whether the adapter changes the logits. */
const LOAD_ADAPTER = `
import json, sys, torch
from transformers import AutoModelForImageTextToText
from peft import PeftModel
base = AutoModelForImageTextToText.from_pretrained(sys.argv[1]).eval()
ids = torch.tensor([[2, 10, 11, 12, 13, 14]])
with torch.no_grad():
    before = base(input_ids=ids).logits
model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(sys.argv[1]), sys.argv[2]).eval()
with torch.no_grad():
    after = model(input_ids=ids).logits
lora = [n for n, _ in model.named_modules() if n.endswith("lora_A")]
print(json.dumps({"changed": not torch.equal(before, after), "loraModules": len(lora), "vision": sum("vision" in n for n in lora)}))
`;

// Each test runs the real trainer on the tiny model, 11-17 s on an idle 2-core machine; the default
// 60 s failed only under load. 180 s per test leaves ~10x.
describe('trainLora: the real Python trainer on a tiny VLM, through the workflow and a GPU worker', { timeout: 180_000 }, () => {
  const s3 = inject('s3');
  const store: ObjectStore = createObjectStore({
    roots: 'unconfined',
    s3: { endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } },
  });
  const root = `s3://${s3.bucket}/train-${randomUUID().slice(0, 8)}`;
  let env: TemporalTestEnv;
  let dir: string;
  let python: PythonEnv;
  let baseModel: string;
  let shardsUri: string;
  let workDir: string;

  const withWorkers = <T>(fn: (queues: { cpu: string; gpu: string }) => Promise<T>, gpuWorkDir = workDir, trainerPython?: PythonEnv): Promise<T> =>
    withCpuAndGpuWorkers(env, { store, workDir: gpuWorkDir, python: trainerPython ?? python, killGraceMs: 5_000 }, fn);

  /** The paper's configuration, shrunk to a few fast CPU steps. */
  const trainInput = (gpuTaskQueue: string, name: string, extra: Record<string, unknown> = {}) => ({
    shardsUri,
    baseModel,
    outputUri: joinUri(root, 'runs', name),
    maxSteps: 6,
    checkpointEvery: 3,
    learningRate: 1e-3,
    precision: 'fp32',
    maxSequenceLength: 256,
    progressEverySeconds: 0.2,
    gpuTaskQueue,
    retry: { initialIntervalSeconds: 0.5, heartbeatTimeoutSeconds: 60 },
    ...extra,
  });

  const start = (cpu: string, input: unknown): Promise<WorkflowHandle<typeof trainLora>> =>
    env.client.workflow.start<typeof trainLora>('trainLora', { taskQueue: cpu, workflowId: `train-${randomUUID()}`, args: [input] });

  async function waitForProgress(handle: WorkflowHandle<typeof trainLora>, done: (p: TrainingProgress) => boolean): Promise<TrainingProgress> {
    for (;;) {
      const progress = await handle.query(trainingProgressQuery);
      if (done(progress)) return progress;
      await sleep(100);
    }
  }

  const trainerPidFile = (outputUri: string): string => join(workDir, 'runs', createHash('sha256').update(outputUri).digest('hex').slice(0, 16), 'trainer.pid');
  /** The running trainer's PID, from its PID file (which must still match the process). */
  const trainerPid = (outputUri: string): number => {
    const state = inspectPidFile(trainerPidFile(outputUri));
    if (state.kind !== 'ours') throw new Error(`no running trainer behind ${trainerPidFile(outputUri)}: ${JSON.stringify(state)}`);
    return state.record.pid;
  };


  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-train-'));
    workDir = join(dir, 'gpu-work');
    python = await ensurePythonEnv(loadConfig().cacheDir);
    baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), loadConfig().cacheDir);
    const bridge = fileUri(join(dir, 'bridge'));
    await importBridgeSample(store, bridge);
    await withWorkers(async ({ cpu }) => {
      const labels = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', { taskQueue: cpu, workflowId: `relabel-${randomUUID()}`, args: [{ datasetUri: bridge }] });
      const shardWorkflowId = `shard-${randomUUID()}`;
      const shards = await env.client.workflow.execute<typeof shardDataset>('shardDataset', {
        taskQueue: cpu,
        workflowId: shardWorkflowId,
        args: [{ datasetUri: labels.outputUri, outputUri: joinUri(root, 'shards'), targetShardBytes: 64 * 1024, validationFraction: 0.2 }],
      });
      shardsUri = shards.manifestUri;
      await recordHistory(env, 'shardDataset', shardWorkflowId);
    });
  }, 300_000);

  afterAll(async () => {
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('trains, reports live progress, checkpoints to the store, and the adapter loads back with peft and changes the outputs', async () => {
    await withWorkers(async ({ cpu, gpu }) => {
      const input = trainInput(gpu, 'a', { baseModelName: 'someorg/tiny-vlm' });
      const handle = await start(cpu, input);
      const live = await waitForProgress(handle, (p) => p.phase === 'training' && p.step > 0);
      expect(live.totalSteps).toBe(6);
      expect(live.loss).toBeGreaterThan(0);
      const result: TrainLoraResult = await handle.result();
      expect(result).toMatchObject({ steps: 6, attempts: 1, resumedFromStep: 0, actionRepresentation: 'language', gitRevision: 'test-revision' });
      expect(result.metrics.train_loss).toBeGreaterThan(0);

      const stored: string[] = [];
      for await (const o of store.list(`${input.outputUri}/`)) stored.push(o.uri.slice(input.outputUri.length + 1));
      expect(stored).toEqual(expect.arrayContaining(['config.json', 'metrics.json', 'result.json', 'adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'adapter/README.md']));
      expect(stored).toEqual(expect.arrayContaining(['checkpoints/checkpoint-00000003.json', 'checkpoints/checkpoint-00000006.json']));
      expect(await getJson(store, result.resultUri, TrainLoraResult)).toEqual(result);

      // Validation loss at every checkpoint step (evalEvery's default), TensorBoard event files with the run.
      const metrics = await getJson(store, joinUri(input.outputUri, 'metrics.json'), TrainingMetrics);
      expect(metrics.evals?.map((e) => e.step)).toEqual([3, 6]);
      expect(result.metrics.eval_loss).toBe(metrics.evals?.at(-1)?.loss);
      expect(result.tensorboardUri).toBe(joinUri(input.outputUri, 'tensorboard'));
      expect(stored.filter((p) => p.startsWith('tensorboard/events.out.tfevents.')).length).toBeGreaterThan(0);

      // The adapter, fetched from S3 as a user would, loads with PeftModel.from_pretrained.
      const local = join(dir, 'adapter-a');
      for (const name of stored.filter((p) => p.startsWith('adapter/'))) {
        const target = join(local, name.slice('adapter/'.length));
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, await store.get(joinUri(input.outputUri, name)));
      }
      expect(readFileSync(join(local, 'README.md'), 'utf8')).toMatch(/LoRA/);
      const { stdout } = await exec(python.python, ['-c', LOAD_ADAPTER, baseModel, local], { env: { ...python.env, HF_HUB_OFFLINE: '1' } });
      const check = JSON.parse(stdout.trim().split('\n').at(-1)!) as { changed: boolean; loraModules: number; vision: number };
      expect(check.changed).toBe(true);
      expect(check.loraModules).toBeGreaterThan(0);
      expect(check.vision).toBe(0);

      // The adapter names its base portably; the VQA local backend still pairs it with the local base.
      const adapterConfig = JSON.parse(readFileSync(join(local, 'adapter_config.json'), 'utf8')) as { base_model_name_or_path: string };
      expect(adapterConfig.base_model_name_or_path).toBe('someorg/tiny-vlm');
      const backend = createLocalBackend({ baseModel, adapter: local, python: () => Promise.resolve(python), device: 'cpu' });
      try {
        await backend.check();
        expect(backend.info).toMatchObject({ ready: true, adapter: local, adapterBase: 'someorg/tiny-vlm' });
      } finally {
        await backend.close();
      }

      await recordHistory(env, 'trainLora', handle.workflowId);

      // Same output, same config: the finished run is returned as it is.
      const again = await (await start(cpu, input)).result();
      expect(again).toEqual(result);
    });
  });

  it('a SIGKILLed trainer is retried and resumes from its last checkpoint, ending at the same step count', async () => {
    await withWorkers(async ({ cpu, gpu }) => {
      const input = trainInput(gpu, 'b', { maxSteps: 8, checkpointEvery: 2 });
      const handle = await start(cpu, input);
      await waitForProgress(handle, (p) => (p.lastCheckpointStep ?? 0) >= 2);
      const pid = trainerPid(input.outputUri);
      process.kill(pid, 'SIGKILL');
      const result = await handle.result();
      expect(result.steps).toBe(8);
      expect(result.attempts).toBe(2);
      expect(result.resumedFromStep).toBeGreaterThanOrEqual(2);
    });
  });

  it('cancelling the workflow stops the trainer process tree and leaves the last checkpoint usable', async () => {
    await withWorkers(async ({ cpu, gpu }) => {
      const input = trainInput(gpu, 'c', { maxSteps: 100_000, checkpointEvery: 2 });
      const handle = await start(cpu, input);
      const progress = await waitForProgress(handle, (p) => (p.lastCheckpointStep ?? 0) >= 2);
      const pid = trainerPid(input.outputUri);
      expect(isAlive(pid)).toBe(true);
      await handle.cancel();
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      // WAIT_CANCELLATION_COMPLETED: by the time the workflow is cancelled, the whole group is gone.
      expect(isAlive(pid)).toBe(false);
      expect(() => process.kill(-pid, 0)).toThrow(/ESRCH/);

      const marker = await store.get(joinUri(input.outputUri, 'checkpoints', `checkpoint-${String(progress.lastCheckpointStep).padStart(8, '0')}.json`));
      const files = (JSON.parse(marker.toString('utf8')) as { files: { path: string; bytes: number }[] }).files;
      expect(files.map((f) => f.path)).toEqual(expect.arrayContaining(['adapter_model.safetensors']));
      for (const f of files) expect((await store.head(joinUri(input.outputUri, 'checkpoints', `checkpoint-${String(progress.lastCheckpointStep).padStart(8, '0')}`, f.path)))?.bytes).toBe(f.bytes);
    });
  });

  it('trains the VLM2VLA-AT ablation and stores its digit-to-token mapping with the adapter', async () => {
    await withWorkers(async ({ cpu, gpu }) => {
      const input = trainInput(gpu, 'd', { maxSteps: 2, checkpointEvery: 2, actionRepresentation: 'action-tokens' });
      const result = await (await start(cpu, input)).result();
      expect(result.actionRepresentation).toBe('action-tokens');
      const mapping = JSON.parse((await store.get(joinUri(result.adapterUri, 'action_tokens.json'))).toString('utf8')) as { digits: Record<string, { id: number; token: string }> };
      const ids = Object.keys(mapping.digits)
        .sort()
        .map((d) => mapping.digits[d]!.id);
      expect(Object.keys(mapping.digits).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      expect(new Set(ids).size).toBe(10);
    });
  });

  it('names a corrupt shard: a machine without a cached copy verifies what it downloads', async () => {
    await withWorkers(async ({ cpu, gpu }) => {
      // A copy of the shard set whose first shard lost a byte: the manifest's sha256 no longer matches.
      const manifest = await getJson(store, shardsUri, ShardManifest);
      const copy = joinUri(root, 'shards-corrupt');
      const shardRoot = shardsUri.slice(0, shardsUri.lastIndexOf('/'));
      for (const shard of manifest.shards) {
        const bytes = await store.get(joinUri(shardRoot, shard.path));
        await store.put(joinUri(copy, shard.path), shard === manifest.shards[0] ? bytes.subarray(0, bytes.length - 1) : bytes);
      }
      await store.put(joinUri(copy, 'shards.json'), JSON.stringify(manifest));
      const corrupt = await applicationFailureOf((await start(cpu, trainInput(gpu, 'f', { shardsUri: joinUri(copy, 'shards.json') }))).result());
      expect(corrupt.type).toBe(TrainingFailure.corruptShard);
      expect(corrupt.message).toContain(manifest.shards[0]!.path);

    }, join(dir, 'gpu-work-fresh'));
  });

  it('a trainer that crashes is retried, and the failure carries its last stderr lines', async () => {
    // A real child process standing in for a trainer with a bug: it writes a traceback and exits 1.
    const crashing = join(dir, 'crashing-python.sh');
    writeFileSync(crashing, '#!/bin/sh\necho "Traceback (most recent call last):" >&2\necho "ZeroDivisionError: division by zero in collate" >&2\nexit 1\n', { mode: 0o755 });
    await withWorkers(
      async ({ cpu, gpu }) => {
        const handle = await start(cpu, trainInput(gpu, 'crash', { retry: { maxAttempts: 2, initialIntervalSeconds: 0.1 } }));
        const crash = await applicationFailureOf(handle.result());
        expect(crash.type).toBe(TrainingFailure.trainerCrashed);
        const started = (await handle.fetchHistory()).events?.find((e) => e.activityTaskStartedEventAttributes)?.activityTaskStartedEventAttributes;
        expect(started?.attempt).toBe(2);
        expect(crash.message).toContain('exited with code 1');
        expect(crash.message).toContain('ZeroDivisionError: division by zero in collate');
      },
      workDir,
      { ...python, python: crashing },
    );
  });

  it('trains from a base model stored as an s3:// directory: the GPU machine stages it once into its work dir; a prefix without a model is named, without retrying', async () => {
    const modelUri = joinUri(root, 'models', 'tiny-vlm');
    for (const name of readdirSync(baseModel, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())) {
      const path = join(name.parentPath, name.name);
      await store.put(joinUri(modelUri, relative(baseModel, path).split(sep).join('/')), readFileSync(path));
    }
    const gpuWorkDir = join(dir, 'gpu-work-s3-model');
    await withWorkers(async ({ cpu, gpu }) => {
      const result = await (await start(cpu, trainInput(gpu, 's3-model', { baseModel: modelUri, maxSteps: 2, checkpointEvery: 2 }))).result();
      expect(result.steps).toBe(2);
      const staged = readdirSync(join(gpuWorkDir, 'models'));
      expect(staged).toHaveLength(1);
      expect(readFileSync(join(gpuWorkDir, 'models', staged[0]!, 'config.json'))).toEqual(readFileSync(join(baseModel, 'config.json')));
      // The model card names the model as the input gave it, not this machine's copy.
      const config = JSON.parse((await store.get(joinUri(result.runUri, 'config.json'))).toString('utf8')) as { input: { baseModel: string } };
      expect(config.input.baseModel).toBe(modelUri);

      const missing = await applicationFailureOf((await start(cpu, trainInput(gpu, 's3-no-model', { baseModel: joinUri(root, 'models', 'nothing-here') }))).result());
      expect(missing.type).toBe(TrainingFailure.baseModelNotFound);
      expect(missing.message).toContain(joinUri(root, 'models', 'nothing-here'));
      expect(missing.message).toContain('no config.json');
    }, gpuWorkDir);
  });

  it('names a missing base model, a missing shard set and invalid input, without retrying', async () => {
    await withWorkers(async ({ cpu, gpu }) => {
      const missing = await applicationFailureOf((await start(cpu, trainInput(gpu, 'e', { baseModel: join(dir, 'no-such-model') }))).result());
      expect(missing.type).toBe(TrainingFailure.baseModelNotFound);
      expect(missing.message).toContain('no-such-model');

      const noShards = await applicationFailureOf((await start(cpu, trainInput(gpu, 'g', { shardsUri: joinUri(root, 'nothing', 'shards.json') }))).result());
      expect(noShards.type).toBe(TrainingFailure.shardsNotFound);

      const invalid = await applicationFailureOf((await start(cpu, { ...trainInput(gpu, 'h'), lora: { rank: 0 }, actionRepresentation: 'digits' })).result());
      expect(invalid.type).toBe(INVALID_WORKFLOW_INPUT);
      expect(invalid.message).toMatch(/lora\.rank/);
      expect(invalid.message).toMatch(/actionRepresentation/);
    });
  });
});
