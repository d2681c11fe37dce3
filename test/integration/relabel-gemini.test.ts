import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../activities/data';
import { FileStore, getJson } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { RelabelReport, labelerKey, type LabelerChoice } from '../../data-schemas/relabel';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { createCpuWorker } from '../../workers/cpu';
import { createGeminiWorker } from '../../workers/gemini';
import type { relabelDataset } from '../../workflows';
import { createGeminiServer, type GeminiServer } from '../fixtures/gemini-server';
import { importBridgeSample, simulateSample } from '../helpers/datasets';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle, type TemporalTestEnv } from '../helpers/temporal';

const API_KEY = 'AIzaTEST-key-that-must-never-reach-a-history-0001';
const GEMINI: LabelerChoice = { name: 'gemini', model: 'gemini-2.5-flash' };

describe('relabelDataset with the Gemini labeler (real client, local Gemini wire server)', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let gemini: GeminiServer;
  let dir: string;
  let datasetUri: string;
  let ids: string[];

  beforeAll(async () => {
    env = await connectTestTemporal();
    gemini = await createGeminiServer({ apiKey: API_KEY });
    dir = mkdtempSync(join(tmpdir(), 'vla-relabel-gemini-'));
    datasetUri = fileUri(join(dir, 'sim'));
    await simulateSample(store, datasetUri, ['put the carrot on the plate', 'pick up the eggplant', 'put the spoon on the towel'], 2, 1);
    ids = (await readManifest(store, datasetUri)).trajectories.map((t) => t.id);
  });
  afterAll(async () => {
    await env.close();
    await gemini.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A CPU worker and a Gemini worker (with `apiKey` in its deps, as from its environment). */
  async function withWorkers<T>(apiKey: string, fn: (queues: { cpu: string; gemini: string }) => Promise<T>): Promise<T> {
    const queues = { cpu: uniqueTaskQueue('relabel-cpu'), gemini: uniqueTaskQueue('relabel-gemini') };
    const cpu = await createCpuWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: queues.cpu, workflowBundle: await workflowBundle(), deps: { store } });
    const model: Worker = await createGeminiWorker({
      connection: env.nativeConnection,
      namespace: env.namespace,
      taskQueue: queues.gemini,
      deps: { store, gemini: { apiKey, baseUrl: gemini.baseUrl } },
      maxCallsPerSecond: 50,
    });
    return cpu.runUntil(model.runUntil(fn(queues)));
  }

  it('labels every trajectory, re-prompts after rejected answers, quarantines what never passes, and keeps the key out of histories', async () => {
    gemini.reset();
    gemini.scriptNth(1, '429'); // RetryInfo says 2s: Temporal waits, then the call goes through
    gemini.scriptFor(/Instruction: ".*spoon/, 'safety'); // every answer about the spoon is blocked
    gemini.scriptFor(/Instruction: ".*carrot/, 'schema_violation', 1); // one bad answer, then fine
    const outputUri = fileUri(join(dir, 'labels-ok'));

    await withWorkers(API_KEY, async (queues) => {
      const workflowId = `${queues.cpu}-ok`;
      const result = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
        taskQueue: queues.cpu,
        workflowId,
        args: [{ datasetUri, outputUri, labeler: GEMINI, maxReprompts: 2, geminiTaskQueue: queues.gemini, maxConcurrent: 3 }],
      });
      expect(result.status).toBe('completed');
      expect(result.counts).toEqual({ total: 6, done: 4, skipped: 0, quarantined: 2, failed: 0 });
      expect(result.usage.inputTokens).toBeGreaterThan(0);
      expect(result.usage.costUsd).toBeGreaterThan(0);
      expect(result.quarantined.map((q) => q.trajectoryId).sort()).toEqual(ids.filter((id) => id.includes('spoon')).sort());
      expect(result.quarantined[0]!.reason).toMatch(/3 answers rejected; last: safety_block/);

      const report = await getJson(store, result.reportUri, RelabelReport);
      expect(report.quarantined).toHaveLength(2);
      expect(report.labeler).toEqual({ name: 'gemini', version: 'gemini-2.5-flash-p1', model: 'gemini-2.5-flash', promptVersion: 'p1' });

      // The re-prompt names the problem of the rejected answer.
      const spoonPrompts = gemini.requests.filter((r) => r.instruction?.includes('spoon')).map((r) => r.promptText);
      expect(spoonPrompts.length).toBe(6); // 2 trajectories x (1 + 2 re-prompts)
      expect(spoonPrompts.some((p) => /rejected/i.test(p) && /safety/i.test(p))).toBe(true);

      // Segmentation and language came from the model; chunk numbers from the real actions.
      const carrotId = ids.find((id) => id.includes('carrot'))!;
      const record = await getJson(store, joinUri(outputUri, 'records', `${carrotId}.json`), DLanRecord);
      expect(record.labeler.name).toBe('gemini');
      expect(record.steps.length).toBeGreaterThan(1);

      const histories = [await env.client.workflow.getHandle(workflowId).fetchHistory()];
      for (const id of ids) histories.push(await env.client.workflow.getHandle(WorkflowIds.relabelTrajectory(outputUri, labelerKey(GEMINI), id)).fetchHistory());
      const text = JSON.stringify(histories);
      expect(text).toContain('labelGemini');
      expect(text).not.toContain(API_KEY);
    });
  });

  it('labels the real Bridge episodes too (64 px frames, 10 steps each)', async () => {
    gemini.reset();
    const bridgeUri = fileUri(join(dir, 'bridge'));
    await importBridgeSample(store, bridgeUri, 5);
    await withWorkers(API_KEY, async (queues) => {
      const result = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
        taskQueue: queues.cpu,
        workflowId: `${queues.cpu}-bridge`,
        args: [{ datasetUri: bridgeUri, labeler: GEMINI, geminiTaskQueue: queues.gemini }],
      });
      expect(result.counts).toEqual({ total: 5, done: 5, skipped: 0, quarantined: 0, failed: 0 });
      expect(gemini.requests).toHaveLength(5);
      expect(gemini.requests.every((r) => r.steps === 10 && r.imageCount > 0)).toBe(true);
    });
  });

  it('stops the whole run early on a wrong API key, with an actionable message', async () => {
    gemini.reset();
    await withWorkers('AIzaWRONG-key-0000000000000000000000000', async (queues) => {
      const err = await env.client.workflow
        .execute<typeof relabelDataset>('relabelDataset', {
          taskQueue: queues.cpu,
          workflowId: `${queues.cpu}-badkey`,
          args: [{ datasetUri, outputUri: fileUri(join(dir, 'labels-badkey')), labeler: GEMINI, geminiTaskQueue: queues.gemini, maxConcurrent: 2 }],
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure.type).toBe('RelabelStopped');
      expect(failure.message).toContain('GEMINI_API_KEY');
      expect(failure.message).not.toContain('AIzaWRONG');
      // Stopped after the trajectories already in flight: no attempt per trajectory, no retries.
      expect(gemini.requests.length).toBeLessThanOrEqual(2);
      const report = await getJson(store, joinUri(fileUri(join(dir, 'labels-badkey')), 'report.json'), RelabelReport);
      expect(report.status).toBe('stopped_fatal');
      expect(report.counts.done).toBe(0);
    });
  });

  it('stops the whole run at once on a spent per-day quota instead of retrying it every few seconds until the reset', async () => {
    gemini.reset();
    gemini.scriptFor(() => true, '429_per_day');
    await withWorkers(API_KEY, async (queues) => {
      const outputUri = fileUri(join(dir, 'labels-daily-quota'));
      const err = await env.client.workflow
        .execute<typeof relabelDataset>('relabelDataset', {
          taskQueue: queues.cpu,
          workflowId: `${queues.cpu}-daily-quota`,
          args: [{ datasetUri, outputUri, labeler: GEMINI, geminiTaskQueue: queues.gemini, maxConcurrent: 2 }],
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure.type).toBe('RelabelStopped');
      expect(failure.message).toContain('GenerateRequestsPerDayPerProjectPerModel-FreeTier');
      expect(failure.message).toContain('daily reset');
      // One request per trajectory in flight, none retried (the 429 asked for a retry in 13 s).
      expect(gemini.requests.length).toBeLessThanOrEqual(2);
      const report = await getJson(store, joinUri(outputUri, 'report.json'), RelabelReport);
      expect(report.status).toBe('stopped_fatal');
    });
  });

  it('stops starting trajectories when the budget is spent', async () => {
    gemini.reset();
    await withWorkers(API_KEY, async (queues) => {
      const result = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
        taskQueue: queues.cpu,
        workflowId: `${queues.cpu}-budget`,
        args: [{ datasetUri, outputUri: fileUri(join(dir, 'labels-budget')), labeler: GEMINI, geminiTaskQueue: queues.gemini, maxConcurrent: 1, budget: { tokens: 1 } }],
      });
      expect(result.status).toBe('budget_exhausted');
      expect(result.counts.done).toBe(1);
      expect(gemini.requests.length).toBe(1);
    });
  });
});
