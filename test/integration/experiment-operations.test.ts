import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../../activities/store';
import { ExperimentFailure, ExperimentFile, ExperimentResult, ExperimentStatus, experimentUri, type ExperimentInputRaw } from '../../data-schemas/experiment';
import { INVALID_WORKFLOW_INPUT } from '../../data-schemas/failures';
import { joinUri } from '../../data-schemas/uri';
import { WorkflowIds } from '../../data-schemas/workflow-ids';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { createGpuWorker } from '../../workers/gpu';
import { experimentPauseSignal, experimentResumeSignal, experimentStatusQuery, type experiment } from '../../workflows';
import { childStarts, countEvents, experimentFixture, type ExperimentFixture } from '../helpers/experiment';
import { startWorkerProcess } from '../helpers/stations';
import { connectTestTemporal, uniqueTaskQueue, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuAndGpuWorkers } from '../helpers/workers';

/** Polls the status query until `done` holds (the query fails while no worker runs the workflow: retried). */
async function waitForStatus(handle: WorkflowHandle, done: (s: ExperimentStatus) => boolean, what: string, timeoutMs = 600_000): Promise<ExperimentStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ExperimentStatus | undefined;
  while (Date.now() < deadline) {
    try {
      last = ExperimentStatus.parse(await handle.query(experimentStatusQuery));
      if (done(last)) return last;
    } catch {
      // no worker holds the workflow right now
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(last)}`);
}

/** Operating an experiment: bad input, pause and resume, workers killed between and inside stages, cancel. */
describe('experiment operations', () => {
  let env: TemporalTestEnv;
  let store: ExperimentFixture['store'];
  let dir: string;
  let storeUri: string;
  let datasetUri: string;
  let python: PythonEnv;
  let baseModel: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    ({ store, dir, storeUri, datasetUri, python, baseModel } = await experimentFixture('vla-experiment-ops-'));
  }, 900_000);

  afterAll(async () => {
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const oneVariant = (name: string, gpu: string, maxSteps: number): ExperimentInputRaw => ({
    name,
    // Each test its own root: no stage is reused from another test.
    storeUri: joinUri(storeUri, name),
    datasetUri,
    shard: { validationFraction: 0.34 },
    variants: [{ name: 'vlm2vla', baseModel, maxSteps, learningRate: 1e-3, precision: 'fp32', checkpointEvery: 2 }],
    taskQueues: { gpu },
  });

  it('refuses invalid input naming every bad field, and starts nothing', { timeout: 120_000 }, async () => {
    const queue = uniqueTaskQueue('experiment-bad');
    const bad = {
      name: 'Not A Name!',
      storeUri: 'bucket/no-scheme',
      datasetUri,
      variants: [],
      vqa: { benchmarks: [{ benchmark: 'mmbench-en', uri: datasetUri }, { benchmark: 'mmbench-en', uri: datasetUri }] },
      campaign: { trials: 0 },
      budget: { gpuHours: -1 },
    };
    await withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-bad'), python }, async ({ cpu }) => {
      const handle = await env.client.workflow.start<typeof experiment>('experiment', { taskQueue: cpu, workflowId: `${queue}-exp`, args: [bad] });
      const failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause;
      expect(cause).toMatchObject({ type: INVALID_WORKFLOW_INPUT, nonRetryable: true });
      for (const field of ['name', 'storeUri', 'variants', 'vqa.benchmarks[1].benchmark', 'campaign.trials', 'budget.gpuHours']) expect(cause?.message).toContain(field);
      const events = await countEvents(handle, (e) => (e.activityTaskScheduledEventAttributes ? 'activity' : e.startChildWorkflowExecutionInitiatedEventAttributes ? 'child' : undefined));
      expect(events).toEqual({});
    });
  });

  it(
    'pauses between stages, survives its worker killed while paused and again inside a stage, and runs every stage once',
    { timeout: 1_200_000 },
    async () => {
      const cpu = uniqueTaskQueue('experiment-cpu');
      const gpu = uniqueTaskQueue('experiment-gpu');
      const stateDir = join(dir, 'state');
      const cpuWorker = () => startWorkerProcess({ args: ['cpu', '--task-queue', cpu], taskQueue: cpu, name: 'cpu', stateDir, storeUri });
      const gpuWorker = await createGpuWorker({
        connection: env.nativeConnection,
        clientConnection: env.client.connection,
        namespace: env.namespace,
        taskQueue: gpu,
        deps: { store, workDir: join(dir, 'gpu-kill'), pythonEnv: () => Promise.resolve(python), gitRevision: 'test-revision' },
      });
      await gpuWorker.runUntil(async () => {
        let worker = await cpuWorker();
        try {
          const input = oneVariant(`killed-${cpu}`, gpu, 6);
          // Paused from its first moment: the first stage waits for resume.
          const handle = await env.client.workflow.signalWithStart<typeof experiment, []>('experiment', {
            taskQueue: cpu,
            workflowId: WorkflowIds.experiment(input.name),
            args: [input],
            signal: experimentPauseSignal,
            signalArgs: [],
          });
          const paused = await waitForStatus(handle, (s) => s.state === 'paused', 'the experiment to pause');
          expect(paused.stages.map((s) => s.state)).toEqual(['pending', 'pending', 'pending']);
          // The Web UI's workflow page shows the same table (the workflow's current details).
          const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
          expect(metadata.currentDetails).toContain('**paused**');
          expect(metadata.currentDetails).toContain('| train:vlm2vla | pending |');

          // Killed between stages: the new worker replays the history and still holds at the pause.
          worker.kill();
          worker = await cpuWorker();
          const replayed = await waitForStatus(handle, (s) => s.state === 'paused', 'the replayed experiment');
          expect(replayed.pauseRequested).toBe(true);
          await handle.signal(experimentResumeSignal);

          // Killed inside a stage: the training stage's workflow runs on the CPU worker, its trainer on the GPU one.
          await waitForStatus(handle, (s) => s.stages.find((r) => r.stage === 'train')?.state === 'running', 'training to start');
          worker.kill();
          worker = await cpuWorker();

          const result = ExperimentResult.parse(await handle.result());
          expect(result.state).toBe('completed');
          expect(result.stages.map((s) => s.state)).toEqual(['done', 'done', 'done']);
          expect(await childStarts(handle)).toEqual({ relabelDataset: 1, shardDataset: 1, trainLora: 1 });
          // Inside the stages too: one child per trajectory, one trainer attempt.
          const relabel = env.client.workflow.getHandle(result.stages[0]!.workflowId!);
          expect(await childStarts(relabel)).toEqual({ relabelTrajectory: 3 });
          const train = env.client.workflow.getHandle(result.stages[2]!.workflowId!);
          expect(await countEvents(train, (e) => (e.activityTaskStartedEventAttributes ? `attempt ${e.activityTaskStartedEventAttributes.attempt}` : undefined))).toEqual({ 'attempt 1': 1 });
        } finally {
          await worker.stop();
        }
      });
    },
  );

  it('cancel stops the running stage workflow and records where the experiment stopped', { timeout: 900_000 }, async () => {
    await withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-cancel'), python }, async ({ cpu, gpu }) => {
      const input = oneVariant(`cancelled-${cpu}`, gpu, 2000);
      const handle = await env.client.workflow.start<typeof experiment>('experiment', { taskQueue: cpu, workflowId: WorkflowIds.experiment(input.name), args: [input] });
      const running = await waitForStatus(handle, (s) => s.stages.find((r) => r.stage === 'train')?.state === 'running', 'training to start');
      // Another experiment reaching the same unsealed stage meanwhile is refused, naming the stage and who runs it.
      const busy = { ...input, name: `busy-${cpu}`.toLowerCase() };
      const refused = await env.client.workflow
        .execute<typeof experiment>('experiment', { taskQueue: cpu, workflowId: WorkflowIds.experiment(busy.name), args: [busy] })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect((refused as WorkflowFailedError).cause).toMatchObject({ type: ExperimentFailure.StageBusy });
      expect((refused as WorkflowFailedError).cause?.message).toContain(running.stages.find((r) => r.stage === 'train')!.workflowId!);

      await handle.cancel();
      const failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      const training = running.stages.find((r) => r.stage === 'train')!;
      expect((await env.client.workflow.getHandle(training.workflowId!).describe()).status.name).toBe('CANCELLED');
      // The report says where it stopped: the training cancelled, nothing after it started.
      const stored = await getJson(store, joinUri(experimentUri(input.storeUri, input.name), 'experiment.json'), ExperimentFile);
      expect(stored.status.state).toBe('cancelled');
      expect(stored.status.stages.map((s) => s.state)).toEqual(['done', 'done', 'cancelled']);
    });
  });
});
