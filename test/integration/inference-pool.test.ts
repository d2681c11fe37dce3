import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FileStore } from '../../activities/store';
import { InferencePool } from '../../activities/vqa/backends/pool';
import { buildTinyModel } from '../../cli/commands/train';
import { TrainingFailure } from '../../data-schemas/training';
import { fileUri } from '../../data-schemas/uri';
import type { VqaSweepInput, VqaSweepInputRaw } from '../../data-schemas/vqa';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { isAlive } from '../../activities/runtime/processes';
import { ensurePythonEnv } from '../../infra/python';
import type { PythonEnv } from '../../activities/runtime/python-env';
import type { trainLora, vqaSweep } from '../../workflows';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuAndGpuWorkers } from '../helpers/workers';

const exec = promisify(execFile);
const SAMPLES = join(REPO_ROOT, 'data', 'samples', 'vqa-samples');

/** A LoRA adapter with non-zero weights for the tiny model. */
const MAKE_ADAPTER = `
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForImageTextToText
torch.manual_seed(1)
lora = LoraConfig(r=4, lora_alpha=16, target_modules=r".*language_model.*\\.(q_proj|v_proj)", init_lora_weights=False)
get_peft_model(AutoModelForImageTextToText.from_pretrained(sys.argv[1]), lora).save_pretrained(sys.argv[2])
`;

/** The local inference processes this test process started (the GPU worker runs in it): from /proc, by parent PID. */
function inferenceChildren(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(ppid) !== process.pid || state === 'Z') return [];
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes('vla_py.infer') ? [Number(entry)] : [];
      } catch {
        // Exited between the listing and the read.
        return [];
      }
    });
}

/** Polls until no inference process is left; the count left otherwise. */
async function inferenceChildrenAfterWaiting(limitMs: number): Promise<number[]> {
  const deadline = Date.now() + limitMs;
  while (inferenceChildren().length > 0 && Date.now() < deadline) await sleep(200);
  return inferenceChildren();
}

describe('local inference processes are bounded per worker, released when idle, and stopped before a trainer', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let python: PythonEnv;
  let baseModel: string;
  let adapter: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-inference-pool-'));
    python = await ensurePythonEnv(loadConfig().cacheDir);
    baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), loadConfig().cacheDir);
    adapter = join(dir, 'adapter');
    await exec(python.python, ['-c', MAKE_ADAPTER, baseModel, adapter], { env: { ...python.env, HF_HUB_OFFLINE: '1' } });
  }, 600_000);

  afterAll(async () => {
    // Whatever a failed assertion left behind, by PID.
    for (const pid of inferenceChildren()) process.kill(-pid, 'SIGKILL');
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const sweepInput = (queues: { cpu: string; gpu: string }, models: VqaSweepInput['models']): VqaSweepInputRaw => ({
    models,
    benchmarks: [{ benchmark: 'mmbench-en', uri: fileUri(join(SAMPLES, 'mmbench')) }],
    outputUri: fileUri(join(dir, `sweep-${randomUUID().slice(0, 8)}`)),
    limit: 1,
    concurrency: 1,
    // One batch per model, one model at a time: each model loads once for its predictions (a load takes seconds on CPU).
    batchSize: 1,
    maxConcurrentEvaluations: 1,
    taskQueues: { openai: queues.cpu, gemini: queues.cpu, local: queues.gpu },
  });

  it(
    'a sweep of two local models with a bound of 1 never holds two processes, and none is left once the sweep is idle',
    async () => {
      const pool = new InferencePool({ maxResident: 1, idleMs: 2_000 });
      const result = await withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-work'), python, inferencePool: pool }, async (queues) => {
        let mostResident = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            mostResident = Math.max(mostResident, inferenceChildren().length);
            await sleep(200);
          }
        })();
        try {
          const models: VqaSweepInput['models'] = [
            { name: 'tiny-base', backend: 'local', baseModel },
            { name: 'tiny-lora', backend: 'local', baseModel, adapter, baseOf: 'tiny-base' },
          ];
          const sweep = await env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: queues.cpu, workflowId: `pool-sweep-${randomUUID()}`, args: [sweepInput(queues, models)] });
          // The worker is still running: only the idle release can free the process.
          const left = await inferenceChildrenAfterWaiting(60_000);
          return { sweep, left, mostResident };
        } finally {
          sampling = false;
          await sampler;
        }
      });
      expect(Object.keys(result.sweep.scores).sort()).toEqual(['tiny-base', 'tiny-lora']);
      // One at a time: each model loaded once it was needed, never beside the other.
      expect(result.mostResident).toBe(1);
      expect(result.left).toEqual([]);
      expect(pool.size).toBe(0);
    },
    900_000,
  );

  it(
    'a training activity on the same worker stops the resident inference process before anything else',
    async () => {
      // A long idle time: only the trainer's start can free the process.
      const pool = new InferencePool({ maxResident: 1, idleMs: 600_000 });
      await withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-work-2'), python, inferencePool: pool }, async (queues) => {
        await env.client.workflow.execute<typeof vqaSweep>('vqaSweep', {
          taskQueue: queues.cpu,
          workflowId: `pool-sweep-${randomUUID()}`,
          args: [sweepInput(queues, [{ name: 'tiny-base', backend: 'local', baseModel }])],
        });
        expect(inferenceChildren()).toHaveLength(1);
        // The training activity starts, frees the GPU, then finds no shard set and fails for good.
        const err = await env.client.workflow
          .execute<typeof trainLora>('trainLora', {
            taskQueue: queues.cpu,
            workflowId: `pool-train-${randomUUID()}`,
            args: [{ shardsUri: fileUri(join(dir, 'no-shards', 'manifest.json')), baseModel, outputUri: fileUri(join(dir, 'run')), maxSteps: 1, precision: 'fp32', gpuTaskQueue: queues.gpu }],
          })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause;
        const app = cause instanceof ActivityFailure ? cause.cause : cause;
        expect((app as ApplicationFailure).type).toBe(TrainingFailure.shardsNotFound);
        expect(inferenceChildren()).toEqual([]);
        expect(pool.size).toBe(0);
      });
    },
    900_000,
  );

  it(
    'an inference process does not outlive its worker when the worker is SIGKILLed',
    async () => {
      const holder = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test', 'fixtures', 'local-inference-holder.ts'), baseModel], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        const [line] = (await once(createInterface({ input: holder.stdout }), 'line')) as [string];
        const { inferencePid } = z.object({ inferencePid: z.int().positive() }).parse(JSON.parse(line));
        expect(isAlive(inferencePid)).toBe(true);
        holder.kill('SIGKILL');
        const deadline = Date.now() + 60_000;
        while (isAlive(inferencePid) && Date.now() < deadline) await sleep(200);
        expect(isAlive(inferencePid)).toBe(false);
      } finally {
        if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
      }
    },
    900_000,
  );
});
