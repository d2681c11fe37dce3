import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateDataset } from '../../activities/data';
import { FileStore, getJson } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { RelabelReport, defaultRelabelOutput } from '../../data-schemas/relabel';
import { fileUri, joinUri } from '../../data-schemas/uri';
import type { relabelDataset } from '../../workflows';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';
import { importBridgeSample, simulateSample } from '../helpers/datasets';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

describe('relabelDataset with the heuristic labeler (real dev server, real store)', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let bridgeUri: string;
  let simUri: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-relabel-'));
    bridgeUri = fileUri(join(dir, 'bridge'));
    simUri = fileUri(join(dir, 'sim'));
    await importBridgeSample(store, bridgeUri);
    await simulateSample(store, simUri, ['put the carrot on the plate', 'pick up the eggplant'], 2, 0);
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const withWorker = <T>(fn: (taskQueue: string) => Promise<T>): Promise<T> => withCpuWorker(env, store, 'relabel', fn);

  const run = (taskQueue: string, workflowId: string, input: unknown) =>
    env.client.workflow.execute<typeof relabelDataset>('relabelDataset', { taskQueue, workflowId, args: [input] });

  it('labels the 25 real Bridge episodes, continues-as-new, and a re-run skips every one', async () => {
    await withWorker(async (taskQueue) => {
      const first = await run(taskQueue, `${taskQueue}-a`, { datasetUri: bridgeUri, childrenPerRun: 10, maxConcurrent: 4 });
      expect(first.status).toBe('completed');
      expect(first.counts).toEqual({ total: 25, done: 25, skipped: 0, quarantined: 0, failed: 0 });
      expect(first.outputUri).toBe(defaultRelabelOutput(bridgeUri, { name: 'heuristic' }));

      // 25 children at 10 per run: three runs of the parent.
      const history = await env.client.workflow.getHandle(`${taskQueue}-a`).fetchHistory();
      expect(history.events?.some((e) => e.workflowExecutionStartedEventAttributes?.continuedExecutionRunId)).toBe(true);

      const records = [];
      for await (const o of store.list(joinUri(first.outputUri, 'records') + '/')) records.push(o.uri);
      expect(records).toHaveLength(25);
      const record = await getJson(store, records[0]!, DLanRecord);
      expect(record.labeler).toEqual({ name: 'heuristic', version: 'h2' });
      expect(record.steps[0]!.subtask).toMatch(/^Move to/);
      const mtime = statSync(new URL(records[0]!)).mtimeMs;

      const report = await getJson(store, first.reportUri, RelabelReport);
      expect(report.counts.done).toBe(25);
      const validation = await validateDataset(store, first.outputUri);
      expect(validation.issues).toEqual([]);

      const manifestBefore = await store.get(joinUri(first.outputUri, 'manifest.json'));
      const again = await run(taskQueue, `${taskQueue}-b`, { datasetUri: bridgeUri });
      // Nothing new: the D_lan manifest keeps its bytes (shard sets name it by sha256).
      expect((await store.get(joinUri(first.outputUri, 'manifest.json'))).equals(manifestBefore)).toBe(true);
      expect(again.counts).toEqual({ total: 25, done: 0, skipped: 25, quarantined: 0, failed: 0 });
      // Finished trajectories are found a page at a time: the re-run starts no child at all.
      const rerun = await env.client.workflow.getHandle(`${taskQueue}-b`).fetchHistory();
      expect(rerun.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toBe(false);
      expect(statSync(new URL(records[0]!)).mtimeMs).toBe(mtime);
    });
  });

  it('labels simulated full-length trajectories with pick-and-place subtasks', async () => {
    await withWorker(async (taskQueue) => {
      const result = await run(taskQueue, `${taskQueue}-sim`, { datasetUri: simUri, outputUri: fileUri(join(dir, 'sim-labels')) });
      expect(result.counts.done).toBe(4);
      const carry = await getJson(store, joinUri(result.outputUri, 'records', 'sim-put-carrot-on-plate-s0-e000.json'), DLanRecord);
      expect(carry.steps.map((s) => s.subtask).join(' | ')).toMatch(/Move to .*carrot.*Grasp .*carrot.*plate.*Release/i);
    });
  });

  it('rejects bad input at once, naming the fields; a missing dataset fails fast with its URI', async () => {
    await withWorker(async (taskQueue) => {
      const bad = await run(taskQueue, `${taskQueue}-bad`, { datasetUri: 42, labeler: { name: 'gpt' }, maxConcurrent: 0 }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(WorkflowFailedError);
      const failure = (bad as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure.type).toBe(INVALID_WORKFLOW_INPUT);
      expect(failure.message).toContain('datasetUri');
      expect(failure.message).toContain('labeler.name');
      expect(failure.message).toContain('maxConcurrent');

      const missingUri = fileUri(join(dir, 'does-not-exist'));
      const missing = await run(taskQueue, `${taskQueue}-missing`, { datasetUri: missingUri }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(WorkflowFailedError);
      const activityFailure = (missing as WorkflowFailedError).cause as ActivityFailure;
      expect(activityFailure).toBeInstanceOf(ActivityFailure);
      const cause = activityFailure.cause as ApplicationFailure;
      expect(cause.type).toBe('DATASET_NOT_FOUND');
      expect(cause.message).toContain(missingUri);
    });
  });

  it('refuses a D_lan dataset up front, naming its kind, and starts no child', async () => {
    await withWorker(async (taskQueue) => {
      const labels = await run(taskQueue, `${taskQueue}-labels`, { datasetUri: simUri, outputUri: fileUri(join(dir, 'sim-labels-as-input')) });
      const wrong = await run(taskQueue, `${taskQueue}-dlan`, { datasetUri: labels.outputUri }).catch((e: unknown) => e);
      expect(wrong).toBeInstanceOf(WorkflowFailedError);
      const cause = ((wrong as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
      expect(cause.type).toBe('DATASET_INVALID');
      expect(cause.message).toBe(
        `${labels.outputUri} is a d_lan dataset; relabelDataset takes a d_rob dataset (an import, a simulation or robot episodes), not a relabel's output`,
      );
      const history = await env.client.workflow.getHandle(`${taskQueue}-dlan`).fetchHistory();
      expect(history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toBe(false);
    });
  });

  it('writes the root cause of each failed trajectory into report.json, not the wrapper\'s "Activity task failed"', async () => {
    const datasetUri = fileUri(join(dir, 'bridge-one-broken'));
    const manifest = await importBridgeSample(store, datasetUri, 2);
    const broken = manifest.trajectories[1]!;
    const brokenUri = joinUri(datasetUri, broken.record);
    await store.put(brokenUri, 'not json');
    await withWorker(async (taskQueue) => {
      const result = await run(taskQueue, `${taskQueue}-broken`, { datasetUri, outputUri: fileUri(join(dir, 'broken-labels')) });
      expect(result.counts).toMatchObject({ total: 2, done: 1, failed: 1 });
      const report = await getJson(store, result.reportUri, RelabelReport);
      expect(report.failed).toHaveLength(1);
      expect(report.failed[0]!.trajectoryId).toBe(broken.id);
      const prefix = `InvalidTrajectory: ${brokenUri}: not valid JSON (expected a D_rob trajectory): `;
      expect(report.failed[0]!.reason.slice(0, prefix.length)).toBe(prefix);
    });
  });
});
