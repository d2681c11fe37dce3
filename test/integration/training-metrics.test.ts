import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import getPort from 'get-port';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildTinyModel } from '../../cli/commands/train';
import { FileStore } from '../../activities/store';
import { PIPELINE_METRICS } from '../../data-schemas/metrics';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { waitForPollers } from '../../infra/dev-stack';
import { startProcess, stopProcess, type StartedProcess } from '../../activities/runtime/processes';
import { ensurePythonEnv } from '../../infra/python';
import type { relabelDataset, shardDataset, trainLora } from '../../workflows';
import { importBridgeSample } from '../helpers/datasets';
import { scrape, valueOf } from '../helpers/prometheus';
import { connectTestTemporal, uniqueTaskQueue, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

const M = PIPELINE_METRICS;

/**
 * A real `vla worker gpu` process with VLA_METRICS_ADDRESS trains the tiny VLM for a few steps: the
 * training gauges show the step, loss and throughput the trainer reported.
 */
describe('training metrics from a GPU worker process', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let baseModel: string;
  let shardsUri: string;
  let gpu: StartedProcess | undefined;
  let gpuQueue: string;
  let metricsAddress: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-training-metrics-'));
    await ensurePythonEnv(loadConfig().cacheDir);
    baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), loadConfig().cacheDir);
    const bridge = fileUri(join(dir, 'bridge'));
    await importBridgeSample(store, bridge, 10);
    await withCpuWorker(env, store, 'training-metrics-prep', async (cpu) => {
      const labels = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', { taskQueue: cpu, workflowId: `relabel-${randomUUID()}`, args: [{ datasetUri: bridge }] });
      const shards = await env.client.workflow.execute<typeof shardDataset>('shardDataset', {
        taskQueue: cpu,
        workflowId: `shard-${randomUUID()}`,
        args: [{ datasetUri: labels.outputUri, outputUri: fileUri(join(dir, 'shards')), targetShardBytes: 64 * 1024, validationFraction: 0.2 }],
      });
      shardsUri = shards.manifestUri;
    });

    gpuQueue = uniqueTaskQueue('metrics-gpu');
    metricsAddress = `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;
    const workerEnv: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporal').address,
      TEMPORAL_NAMESPACE: env.namespace,
      VLA_STATE_DIR: join(dir, 'state'),
      VLA_STORE_URI: fileUri(dir),
      VLA_WORK_DIR: join(dir, 'gpu-work'),
      VLA_METRICS_ADDRESS: metricsAddress,
    };
    delete workerEnv.VLA_STORE_ROOTS;
    delete workerEnv.OTEL_EXPORTER_OTLP_ENDPOINT;
    const logFile = join(dir, 'worker-gpu.log');
    gpu = startProcess(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), 'worker', 'gpu', '--task-queue', gpuQueue], { logFile, env: workerEnv, cwd: REPO_ROOT, detached: true });
    await waitForPollers(loadConfig(workerEnv), gpuQueue, 'activity', gpu.pid, logFile, 180_000);
  }, 400_000);
  afterAll(async () => {
    if (gpu) await stopProcess(gpu.pid, { graceMs: 10_000, group: true });
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the gauges hold the last step, its loss and its throughput', { timeout: 300_000 }, async () => {
    const before = await scrape(metricsAddress);
    expect(valueOf(before, M.trainingStep.name)).toBeUndefined();
    const result = await withCpuWorker(env, store, 'training-metrics', (cpu) =>
      env.client.workflow.execute<typeof trainLora>('trainLora', {
        taskQueue: cpu,
        workflowId: `train-${randomUUID()}`,
        args: [
          {
            shardsUri,
            baseModel,
            outputUri: joinUri(fileUri(dir), 'runs', 'metrics'),
            maxSteps: 4,
            checkpointEvery: 4,
            learningRate: 1e-3,
            precision: 'fp32',
            maxSequenceLength: 256,
            gpuTaskQueue: gpuQueue,
            retry: { initialIntervalSeconds: 0.5, heartbeatTimeoutSeconds: 60 },
          },
        ],
      }),
    );
    expect(result.steps).toBe(4);
    const after = await scrape(metricsAddress);
    expect(valueOf(after, M.trainingStep.name, { activityType: 'trainLora' })).toBe(4);
    expect(valueOf(after, M.trainingLoss.name)).toBe(result.finalLoss);
    expect(valueOf(after, M.trainingTokensPerSecond.name)).toBeGreaterThan(0);
  });
});
