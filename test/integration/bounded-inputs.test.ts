import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../activities/store';
import { MAX_WORKFLOW_ID_BYTES, utf8Length } from '../../data-schemas/bounded';
import { labelerKey } from '../../data-schemas/relabel';
import { MAX_OBJECT_URI_LENGTH, fileUri, joinUri } from '../../data-schemas/uri';
import { readManifest } from '../../activities/data';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';
import { importBridgeSample } from '../helpers/datasets';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

/** A liveness bound, not a speed assertion: the old code never closed these workflows at all. */
const CLOSES_WITHIN_MS = 60_000;

/** The workflow's outcome, or 'still running' (then terminated) when it does not close within the bound. */
async function outcome(handle: WorkflowHandle): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), CLOSES_WITHIN_MS)));
  try {
    const result = await Promise.race([handle.result().catch((e: unknown) => e), bound]);
    if (result === 'still running') await handle.terminate('test bound').catch(() => undefined);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** A file URI under `root` of exactly `length` characters (segments of at most 200, under NAME_MAX). */
function uriOfLength(root: string, length: number): string {
  let uri = root;
  let n = 0;
  while (uri.length < length) {
    const room = length - uri.length - 1;
    uri += `/${`${n++}-`.padEnd(Math.min(200, room), 'x').slice(0, Math.min(200, room))}`;
  }
  return uri;
}

describe('inputs that once made ids and search attributes unbounded (real dev server)', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let bridgeUri: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-bounded-'));
    bridgeUri = fileUri(join(dir, 'bridge'));
    await importBridgeSample(store, bridgeUri, 3);
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('relabelDataset: a 1.2 KB outputUri fails at once naming outputUri; one just under the limit completes, its children with bounded ids', { timeout: 240_000 }, async () => {
    await withCpuWorker(env, store, 'bounded-relabel', async (taskQueue) => {
      const tooLong = uriOfLength(fileUri(join(dir, 'long')), 1200);
      const refused = await outcome(await env.client.workflow.start('relabelDataset', { taskQueue, workflowId: `${taskQueue}-too-long`, args: [{ datasetUri: bridgeUri, outputUri: tooLong }] }));
      expect(refused).toBeInstanceOf(WorkflowFailedError);
      const failure = (refused as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure.type).toBe(INVALID_WORKFLOW_INPUT);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(/outputUri: must be an object URI of at most 1024 characters/);

      const outputUri = uriOfLength(fileUri(join(dir, 'long')), MAX_OBJECT_URI_LENGTH - 4);
      const key = labelerKey({ name: 'heuristic' });
      const ids = (await readManifest(store, bridgeUri)).trajectories.map((t) => t.id);
      // Before the bound, each child's id was the whole URI and more: over the server's limit.
      expect(utf8Length(`relabel:${outputUri}:${key}:${ids[0]}`)).toBeGreaterThan(MAX_WORKFLOW_ID_BYTES);
      const result = await outcome(await env.client.workflow.start('relabelDataset', { taskQueue, workflowId: `${taskQueue}-near-max`, args: [{ datasetUri: bridgeUri, outputUri }] }));
      expect(result).toMatchObject({ status: 'completed', outputUri, counts: { total: 3, done: 3, failed: 0 } });
      for (const id of ids) {
        const childId = WorkflowIds.relabelTrajectory(outputUri, key, id);
        expect(utf8Length(childId)).toBeLessThanOrEqual(MAX_WORKFLOW_ID_BYTES);
        expect((await env.client.workflow.getHandle(childId).describe()).status.name).toBe('COMPLETED');
        expect(await store.head(joinUri(outputUri, 'records', `${id}.json`))).toBeDefined();
      }
    });
  });

  it('trainLora: a 3 KB baseModel fails at once, non-retryable, naming baseModel (no search attribute terminates it)', { timeout: 120_000 }, async () => {
    await withCpuWorker(env, store, 'bounded-train', async (taskQueue) => {
      const handle = await env.client.workflow.start('trainLora', {
        taskQueue,
        workflowId: `${taskQueue}-huge-model`,
        args: [{ shardsUri: fileUri(join(dir, 'shards', 'shards.json')), baseModel: `/models/${'m'.repeat(3000)}`, outputUri: fileUri(join(dir, 'run')), gpuTaskQueue: `${taskQueue}-no-gpu` }],
      });
      const refused = await outcome(handle);
      expect(refused).toBeInstanceOf(WorkflowFailedError);
      const failure = (refused as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure.type).toBe(INVALID_WORKFLOW_INPUT);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(/baseModel: must be at most 512 characters/);
      expect((await handle.describe()).status.name).toBe('FAILED');
    });
  });
});
