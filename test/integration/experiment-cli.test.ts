import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { followExperiment, stageLine } from '../../cli/commands/experiment';
import { TaskQueue } from '../../data-schemas/activity-contract';
import { ExperimentResult, ExperimentStatus, type StageRow } from '../../data-schemas/experiment';
import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { fileUri } from '../../data-schemas/uri';
import { REPO_ROOT } from '../../infra/config';
import { experimentStandIn, standInFinishSignal, standInStatusSignal } from '../fixtures/experiment-stand-in';
import { connectTestTemporal, devServerEnv, uniqueTaskQueue, type TemporalTestEnv } from '../helpers/temporal';

/**
 * The real `vla experiment` commands, run as child processes against the test's Temporal server.
 * A wrong input is refused, every bad field named, before anything starts; a good one starts the
 * `experiment` workflow with the JSON as written (no worker runs it: the test reads its start).
 * Following, status, pause, resume and cancel talk to a stand-in workflow
 * (test/fixtures/experiment-stand-in.ts) whose stages change when the test signals it.
 */
describe('vla experiment', () => {
  let env: TemporalTestEnv;
  let dir: string;
  let cliEnv: NodeJS.ProcessEnv;
  let worker: Worker;
  let workerRun: Promise<void>;
  const taskQueue = uniqueTaskQueue('experiment-cli');

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-experiment-cli-'));
    cliEnv = { ...devServerEnv(inject('temporal').address, env.namespace), VLA_STATE_DIR: join(dir, 'state') };
    delete cliEnv.VLA_MULTI_HOST;
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: join(REPO_ROOT, 'test', 'fixtures', 'experiment-stand-in.ts'), logger: new DefaultLogger('WARN') });
    worker = await Worker.create({ connection: env.nativeConnection, namespace: env.namespace, taskQueue, workflowBundle });
    workerRun = worker.run();
  });
  afterAll(async () => {
    worker.shutdown();
    await workerRun;
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const FINISHED = { startedAt: '2026-12-07T10:00:00Z', finishedAt: '2026-12-07T10:05:00Z' };
  const status = (name: string, stages: StageRow[], more: Partial<ExperimentStatus> = {}): ExperimentStatus =>
    ExperimentStatus.parse({ name, state: 'running', pauseRequested: false, stages, spent: { geminiUsd: 0, gpuHours: 0.25 }, budget: { gpuHours: 2 }, ...more });

  async function startStandIn(name: string, initial: ExperimentStatus): Promise<WorkflowHandle> {
    return env.client.workflow.start(experimentStandIn, { taskQueue, workflowId: WorkflowIds.experiment(name), args: [initial] });
  }

  /** Runs `vla experiment <args>`; resolves with its exit code and output however it exits. */
  async function vla(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await promisify(execFile)(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), 'experiment', ...args], {
        env: cliEnv,
        cwd: REPO_ROOT,
        timeout: 300_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const failed = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
    }
  }

  function inputFile(name: string, input: unknown): string {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(input));
    return file;
  }

  it('refuses an input with several bad fields, naming every one, and starts nothing', async () => {
    const name = 'cli-bad-input';
    const file = inputFile(name, {
      name,
      storeUri: 'http://not-a-store/x',
      datasetUri: fileUri(join(dir, 'data')),
      variants: [{ name: 'vlm2vla', baseModel: join(dir, 'tiny'), learningRate: -1, precision: 'fp8' }],
      relabel: { maxReprompts: 99 },
      budget: { gpuHours: 0 },
      colour: 'blue',
    });
    const { code, stderr } = await vla(file);
    expect(code).not.toBe(0);
    for (const field of ['storeUri:', 'variants[0].learningRate:', 'variants[0].precision:', 'relabel.maxReprompts:', 'budget.gpuHours:', '(root): Unrecognized key: "colour"']) {
      expect(stderr, field).toContain(field);
    }
    expect(stderr).toContain(`${file} is not a valid experiment input`);
    await expect(env.client.workflow.getHandle(WorkflowIds.experiment(name)).describe()).rejects.toThrow(WorkflowNotFoundError);
  });

  it('starts the experiment workflow under its name on the CPU queue, with the input as written (--no-wait)', { timeout: 300_000 }, async () => {
    const name = 'cli-start';
    const input = {
      name,
      storeUri: fileUri(join(dir, 'store')),
      datasetUri: fileUri(join(dir, 'data')),
      variants: [{ name: 'vlm2vla', baseModel: join(dir, 'tiny') }],
    };
    const { code, stdout } = await vla(inputFile(name, input), '--no-wait');
    expect(code).toBe(0);
    expect(stdout).toContain(`experiment ${WorkflowIds.experiment(name)}`);
    const handle = env.client.workflow.getHandle(WorkflowIds.experiment(name));
    try {
      const described = await handle.describe();
      expect(described.type).toBe('experiment');
      expect(described.taskQueue).toBe(TaskQueue.cpu);
      const history = await handle.fetchHistory();
      const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      expect(payload).toBeDefined();
      // The schema's defaults are the workflow's to apply: the history holds what the researcher wrote.
      expect(defaultPayloadConverter.fromPayload(payload!)).toEqual(input);
      expect(stdout).not.toContain('note:');

      // The same name again with another input attaches to the running one, and says so.
      const other = await vla(inputFile(`${name}-other`, { ...input, relabel: { limit: 2 } }), '--no-wait');
      expect(other.code, other.stderr).toBe(0);
      expect(other.stdout).toContain(`note: ${WorkflowIds.experiment(name)} was already running with another input`);
      expect((await handle.describe()).runId).toBe(described.runId);
    } finally {
      await handle.terminate('test: only its start is read');
    }
  });

  it('follows the experiment: a line per state change, a running stage\'s own progress, then the result', { timeout: 300_000 }, async () => {
    const name = 'cli-follow';
    const relabelRunning: StageRow = { id: 'relabel', stage: 'relabel', state: 'running', workflowId: 'no-such-relabel-run' };
    const shardPending: StageRow = { id: 'shard', stage: 'shard', state: 'pending' };
    const trainPending: StageRow = { id: 'train:vlm2vla', stage: 'train', variant: 'vlm2vla', state: 'pending' };
    const handle = await startStandIn(name, status(name, [relabelRunning, shardPending, trainPending]));
    const lines: string[] = [];
    const following = followExperiment(env.client, handle, { tty: false }, (line) => lines.push(line));
    // The relabel child's query fails (no such run): the line shows no progress, and following goes on.
    await vi.waitFor(() => expect(lines).toContain(`  ${stageLine(relabelRunning, new Date())}`), { timeout: 60_000, interval: 100 });

    const relabelDone: StageRow = { ...relabelRunning, state: 'done', ...FINISHED };
    const shardReused: StageRow = { ...shardPending, state: 'reused', detail: 'made by experiment cli-earlier' };
    // The stand-in answers a training run's progress query itself.
    const trainRunning: StageRow = { ...trainPending, state: 'running', workflowId: handle.workflowId };
    await handle.signal(standInStatusSignal, status(name, [relabelDone, shardReused, trainRunning]));
    const trainLine = '  > train:vlm2vla  running           training step 3/10, loss 0.5000';
    await vi.waitFor(() => expect(lines).toContain(trainLine), { timeout: 60_000, interval: 100 });

    const trainDone: StageRow = { ...trainPending, state: 'done', ...FINISHED };
    const final = status(name, [relabelDone, shardReused, trainDone], { state: 'completed' });
    const result = ExperimentResult.parse({ ...final, reportUri: 'file:///store/experiments/cli-follow/report.html', statusUri: 'file:///store/experiments/cli-follow/experiment.json' });
    await handle.signal(standInFinishSignal, { result });
    await expect(following).resolves.toEqual(result);

    // Each state once, however many times it was polled; the final states may be seen or not before the result.
    expect(lines.slice(0, 7)).toEqual([
      `experiment ${name}: running`,
      '  > relabel  running',
      '    shard  pending',
      '    train:vlm2vla  pending',
      '  + relabel  done       5m00s',
      '  = shard  reused            made by experiment cli-earlier',
      trainLine,
    ]);
    expect(new Set(lines).size).toBe(lines.length);
  });

  it('a failed experiment: following throws its root cause', async () => {
    const name = 'cli-fail';
    const handle = await startStandIn(name, status(name, [{ id: 'relabel', stage: 'relabel', state: 'running' }]));
    // The terminal's bars (drawn to nothing here: stdout is not a terminal) end the same way.
    const following = followExperiment(env.client, handle, { tty: true }, () => {});
    await handle.signal(standInFinishSignal, { failure: 'relabel failed: 3 of 3 trajectories quarantined' });
    await expect(following).rejects.toThrow(`${handle.workflowId}: ExperimentStageFailed: relabel failed: 3 of 3 trajectories quarantined`);
  });

  it('status, pause, resume and cancel act on the experiment of that name', { timeout: 300_000 }, async () => {
    const name = 'cli-steer';
    const handle = await startStandIn(name, status(name, [{ id: 'relabel', stage: 'relabel', state: 'done', ...FINISHED }, { id: 'shard', stage: 'shard', state: 'pending' }]));
    const paused = await vla('pause', name);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toContain(`pause requested for ${WorkflowIds.experiment(name)}`);

    const shown = await vla('status', name);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout.split('\n')).toEqual([
      `experiment ${name}: running (pause requested), 1/2 stages finished`,
      '  + relabel  done       5m00s',
      '    shard    pending',
      '  spent: Gemini $0.0000 (budget none), GPU 0.25 h (budget 2.00 h)',
      '',
    ]);

    expect((await vla('resume', name)).code).toBe(0);
    expect((await env.client.workflow.getHandle(handle.workflowId).query<ExperimentStatus>('status')).pauseRequested).toBe(false);

    const cancelled = await vla('cancel', name);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toContain('finished stages stay sealed in the store');
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
    expect((await handle.describe()).status.name).toBe('CANCELLED');

    const unknown = await vla('status', 'no-such-experiment');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain(`no experiment named no-such-experiment (workflow ${WorkflowIds.experiment('no-such-experiment')})`);
  });
});
