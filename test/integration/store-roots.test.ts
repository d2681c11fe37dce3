import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createObjectStore, FileStore, StoreErrorCode, type ObjectStore } from '../../activities/store';
import { fileUri } from '../../data-schemas/uri';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { waitForPollers } from '../../infra/dev-stack';
import { startProcess, stopProcess } from '../../activities/runtime/processes';
import { simulateSample } from '../helpers/datasets';
import { connectTestTemporal, devServerEnv, uniqueTaskQueue, workflowBundle, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';

/** Every file under `dir`, recursively, with its bytes: what "unchanged" is checked against. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const full = join(entry.parentPath, entry.name);
      out[full] = readFileSync(full, 'base64');
    }
  }
  return out;
}

/** The workflow's failure, checked to be the store's refusal of `uri` after exactly one attempt. */
async function expectRefused(handle: WorkflowHandle, uri: string): Promise<void> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${uri} should be refused`).toBeInstanceOf(WorkflowFailedError);
  const activity = (err as WorkflowFailedError).cause;
  expect(activity).toBeInstanceOf(ActivityFailure);
  const failure = (activity as ActivityFailure).cause;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect((failure as ApplicationFailure).type).toBe(StoreErrorCode.OutsideRoots);
  expect((failure as ApplicationFailure).nonRetryable).toBe(true);
  expect((failure as ApplicationFailure).message).toContain(uri);
  // Not retried: one activity, started once (a retry would raise the started event's attempt).
  const { events } = await handle.fetchHistory();
  const started = (events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
  expect(started).toHaveLength(1);
  expect(started[0]!.activityTaskStartedEventAttributes!.attempt).toBe(1);
}

describe('the store confines workers to their roots (real dev server, real filesystem)', () => {
  let env: TemporalTestEnv;
  let dir: string;
  let storeDir: string;
  let outsideDir: string;
  let storeUri: string;
  let confined: ObjectStore;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-roots-it-'));
    storeDir = join(dir, 'store');
    outsideDir = join(dir, 'outside');
    mkdirSync(storeDir);
    mkdirSync(outsideDir);
    writeFileSync(join(outsideDir, 'keep.txt'), 'not yours');
    storeUri = fileUri(storeDir);
    confined = createObjectStore({ roots: { readWrite: [storeUri], readOnly: [] } });
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const smoke = (taskQueue: string, id: string, outputUri: string): Promise<WorkflowHandle> =>
    env.client.workflow.start('storeSmoke', { taskQueue, workflowId: `${taskQueue}-${id}`, args: [{ outputUri, text: 'owned' }] });

  it('storeSmoke writes inside the roots and is refused at once, non-retryable, outside them or through traversal', async () => {
    const before = snapshot(outsideDir);
    await withCpuWorker(env, confined, 'roots', async (taskQueue) => {
      const inside = await (await smoke(taskQueue, 'inside', `${storeUri}/smoke/ok.txt`)).result();
      expect(inside).toMatchObject({ created: true, bytes: 5 });

      const outside = [fileUri(join(outsideDir, 'owned.txt')), `${fileUri(join(dir, 'store-evil'))}/owned.txt`];
      for (const [i, uri] of outside.entries()) await expectRefused(await smoke(taskQueue, `out-${i}`, uri), uri);

      // Traversal never reaches a worker: the workflow's input schema refuses it first, naming the
      // field (the store's own check of the same URIs is in test/unit/store-roots.test.ts).
      const traversals = [
        `${storeUri}/../outside/owned.txt`,
        `${storeUri}/%2e%2e/outside/owned.txt`,
        `${storeUri}/%2E%2e/outside/owned.txt`,
        `${storeUri}/%252e%252e/outside/owned.txt`,
      ];
      for (const [i, uri] of traversals.entries()) {
        const err = await (await smoke(taskQueue, `traversal-${i}`, uri)).result().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `${uri} should be refused`).toBeInstanceOf(WorkflowFailedError);
        const failure = (err as WorkflowFailedError).cause;
        expect(failure).toBeInstanceOf(ApplicationFailure);
        expect((failure as ApplicationFailure).type).toBe(INVALID_WORKFLOW_INPUT);
        expect((failure as ApplicationFailure).nonRetryable).toBe(true);
        expect((failure as ApplicationFailure).message).toContain('outputUri');
      }
    });
    expect(snapshot(outsideDir)).toEqual(before);
    expect(readdirSync(dir).sort()).toEqual(['outside', 'store']);
  });

  it('an activity that only reads is refused a dataset outside the roots', async () => {
    const datasetUri = fileUri(join(outsideDir, 'sim'));
    await simulateSample(new FileStore(), datasetUri, ['pick up the eggplant'], 1, 0);
    const before = snapshot(outsideDir);
    await withCpuWorker(env, confined, 'roots-read', async (taskQueue) => {
      const handle = await env.client.workflow.start('relabelDataset', {
        taskQueue,
        workflowId: `${taskQueue}-relabel`,
        args: [{ datasetUri, outputUri: `${storeUri}/dlan/sim` }],
      });
      await expectRefused(handle, datasetUri);
    });
    expect(snapshot(outsideDir)).toEqual(before);
    expect(readdirSync(storeDir)).not.toContain('dlan');
  });

  it('a worker started by the CLI confines to VLA_STORE_URI by default', async () => {
    const bundleFile = join(dir, 'workflow-bundle.js');
    writeFileSync(bundleFile, (await workflowBundle()).code);
    const taskQueue = uniqueTaskQueue('roots-cli');
    const cliEnv: NodeJS.ProcessEnv = devServerEnv(inject('temporal').address, env.namespace);
    delete cliEnv.VLA_STORE_ROOTS;
    delete cliEnv.VLA_STORE_READ_ROOTS;
    Object.assign(cliEnv, { VLA_STATE_DIR: join(dir, 'state'), VLA_STORE_URI: storeUri, VLA_WORKFLOW_BUNDLE: bundleFile });
    const logFile = join(dir, 'state', 'worker-cpu.log');
    const proc = startProcess(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), 'worker', 'cpu', '--task-queue', taskQueue], {
      logFile,
      env: cliEnv,
      cwd: REPO_ROOT,
      detached: true,
    });
    const before = snapshot(outsideDir);
    try {
      await waitForPollers(loadConfig(cliEnv), taskQueue, 'activity', proc.pid, logFile);
      const inside = await (await smoke(taskQueue, 'inside', `${storeUri}/cli/ok.txt`)).result();
      expect(inside).toMatchObject({ created: true });
      const outside = fileUri(join(outsideDir, 'cli-owned.txt'));
      await expectRefused(await smoke(taskQueue, 'outside', outside), outside);
    } finally {
      await stopProcess(proc.pid, { graceMs: 10_000, group: true });
    }
    expect(snapshot(outsideDir)).toEqual(before);
    expect(readFileSync(logFile, 'utf8')).toContain(`this store reads and writes only under ${storeUri} and only reads under ${fileUri(join(REPO_ROOT, 'data', 'samples'))}`);
  });
});

