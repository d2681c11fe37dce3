import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../activities/data';
import { FileStore, getJson } from '../../activities/store';
import { RelabelReport, type LabelerChoice, type RelabelProgress } from '../../data-schemas/relabel';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { createCpuWorker } from '../../workers/cpu';
import { createGeminiWorker } from '../../workers/gemini';
import type { relabelDataset } from '../../workflows';
import { VlaWaitingOn } from '../../workflows/search-attributes';
import { createGeminiServer, type GeminiServer } from '../fixtures/gemini-server';
import { simulateSample } from '../helpers/datasets';
import { closedPort } from '../helpers/net';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle, type TemporalTestEnv } from '../helpers/temporal';

const API_KEY = 'AIzaTEST-key-outages-000000000000000001';
const GEMINI: LabelerChoice = { name: 'gemini', model: 'gemini-2.5-flash' };

/** Polls `read` until it returns a defined value (the deadline only bounds a broken run). */
async function eventually<T>(read: () => Promise<T | undefined>, what: string, deadlineMs = 120_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('relabelDataset during outages (real dev server, real Gemini client, local Gemini wire server)', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let gemini: GeminiServer;
  let dir: string;
  let datasetUri: string;
  let total: number;

  beforeAll(async () => {
    env = await connectTestTemporal();
    gemini = await createGeminiServer({ apiKey: API_KEY });
    dir = mkdtempSync(join(tmpdir(), 'vla-relabel-outages-'));
    datasetUri = fileUri(join(dir, 'sim'));
    await simulateSample(store, datasetUri, ['put the carrot on the plate', 'pick up the eggplant', 'put the spoon on the towel', 'put the eggplant in the basket'], 3, 7);
    total = (await readManifest(store, datasetUri)).trajectories.length;
  });
  afterAll(async () => {
    await env.close();
    await gemini.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function geminiWorker(taskQueue: string, baseUrl: string): Promise<Worker> {
    return createGeminiWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue, deps: { store, gemini: { apiKey: API_KEY, baseUrl } }, maxCallsPerSecond: 50 });
  }

  it(
    'an unreachable Gemini endpoint stops the run after N trajectories in a row fail alike; a re-run labels only the missing ones',
    async () => {
      gemini.reset();
      const queues = { cpu: uniqueTaskQueue('outage-cpu'), up: uniqueTaskQueue('outage-gemini-up'), down: uniqueTaskQueue('outage-gemini-down') };
      const cpu = await createCpuWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: queues.cpu, workflowBundle: await workflowBundle(), deps: { store } });
      const up = await geminiWorker(queues.up, gemini.baseUrl);
      const down = await geminiWorker(queues.down, `http://127.0.0.1:${await closedPort()}/`);
      const outputUri = fileUri(join(dir, 'labels-outage'));
      const args = { datasetUri, outputUri, labeler: GEMINI, maxConcurrent: 2 };

      await cpu.runUntil(
        up.runUntil(
          down.runUntil(async () => {
            // Some trajectories labelled before the outage.
            const before = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
              taskQueue: queues.cpu,
              workflowId: `${queues.cpu}-before`,
              args: [{ ...args, geminiTaskQueue: queues.up, limit: 3 }],
            });
            expect(before.counts.done).toBe(3);

            // The outage: every call is refused. Each trajectory gives up after a few attempts and the
            // third failure in a row stops the run, long before every trajectory had its turn.
            const err = await env.client.workflow
              .execute<typeof relabelDataset>('relabelDataset', {
                taskQueue: queues.cpu,
                workflowId: `${queues.cpu}-outage`,
                args: [{ ...args, geminiTaskQueue: queues.down, stopAfterConsecutiveFailures: 3 }],
              })
              .catch((e: unknown) => e);
            expect(err).toBeInstanceOf(WorkflowFailedError);
            const failure = (err as WorkflowFailedError).cause;
            expect(failure).toBeInstanceOf(ApplicationFailure);
            expect((failure as ApplicationFailure).type).toBe('RelabelOutage');
            expect(failure?.message).toMatch(/\d+ trajectories in a row failed with GeminiNetwork/);
            expect(failure?.message).toContain('ECONNREFUSED');
            expect(failure?.message).toContain('re-run the same input');
            const report = await getJson(store, joinUri(outputUri, 'report.json'), RelabelReport);
            expect(report.status).toBe('stopped_fatal');
            expect(report.counts.skipped).toBe(3);
            expect(report.counts.done).toBe(0);
            expect(report.counts.failed).toBeGreaterThanOrEqual(3);
            // Fewer children than trajectories were started: the rest never ran.
            expect(report.counts.skipped + report.counts.failed).toBeLessThan(total);
            expect(report.failed[0]?.reason).toMatch(/^GeminiNetwork: Gemini API unreachable: .*gave up after 4 attempts/);

            // The endpoint is back: the same input resumes, calling Gemini only for the missing trajectories.
            gemini.reset();
            const after = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
              taskQueue: queues.cpu,
              workflowId: `${queues.cpu}-after`,
              args: [{ ...args, geminiTaskQueue: queues.up, stopAfterConsecutiveFailures: 3 }],
            });
            expect(after.status).toBe('completed');
            expect(after.counts).toMatchObject({ total, done: total - 3, skipped: 3, failed: 0 });
            expect(gemini.requests.length).toBe(total - 3);
          }),
        ),
      );
    },
    // Three relabel runs; the outage run waits out 3 refused attempts (2 + 4 + 8 s of backoff) per trajectory.
    300_000,
  );

  it('the breaker trips on any cause that repeats, not only Gemini: three unreadable trajectories in a row stop a heuristic run', async () => {
    const brokenUri = fileUri(join(dir, 'sim-broken'));
    await simulateSample(store, brokenUri, ['put the carrot on the plate', 'pick up the eggplant'], 3, 11);
    const manifest = await readManifest(store, brokenUri);
    for (const t of manifest.trajectories.slice(0, 3)) await store.put(joinUri(brokenUri, t.record), 'not json');
    const cpuQueue = uniqueTaskQueue('breaker-cpu');
    const cpu = await createCpuWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: cpuQueue, workflowBundle: await workflowBundle(), deps: { store } });
    const outputUri = fileUri(join(dir, 'labels-broken'));
    const err = await cpu.runUntil(
      env.client.workflow
        .execute<typeof relabelDataset>('relabelDataset', {
          taskQueue: cpuQueue,
          workflowId: `${cpuQueue}-broken`,
          args: [{ datasetUri: brokenUri, outputUri, maxConcurrent: 1, stopAfterConsecutiveFailures: 3 }],
        })
        .catch((e: unknown) => e),
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const failure = (err as WorkflowFailedError).cause;
    expect((failure as ApplicationFailure).type).toBe('RelabelOutage');
    expect(failure?.message).toContain('3 trajectories in a row failed with InvalidTrajectory');
    const report = await getJson(store, joinUri(outputUri, 'report.json'), RelabelReport);
    // One at a time: the three broken ones, and none of the three good ones after them.
    expect(report.counts).toMatchObject({ total: 6, done: 0, failed: 3 });
  });

  it(
    'a Gemini queue no worker polls is named (progress query, VlaWaitingOn) while the run keeps waiting, and cleared once a worker comes',
    async () => {
      gemini.reset();
      const cpuQueue = uniqueTaskQueue('typo-cpu');
      const misspelled = uniqueTaskQueue('vla-gemnii');
      const cpu = await createCpuWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: cpuQueue, workflowBundle: await workflowBundle(), deps: { store } });
      const workflowId = `${cpuQueue}-typo`;
      await cpu.runUntil(async () => {
        const handle = await env.client.workflow.start<typeof relabelDataset>('relabelDataset', {
          taskQueue: cpuQueue,
          workflowId,
          args: [{ datasetUri, outputUri: fileUri(join(dir, 'labels-typo')), labeler: GEMINI, geminiTaskQueue: misspelled, maxConcurrent: 2, limit: 2, noWorkerWarningSeconds: 1 }],
        });
        const waitingOn = await eventually(async () => (await handle.query<RelabelProgress>('progress')).waitingOn, 'the progress query to name the queue');
        expect(waitingOn).toBe(misspelled);
        const described = await handle.describe();
        expect(described.status.name).toBe('RUNNING');
        expect(described.typedSearchAttributes.get(VlaWaitingOn)).toBe(misspelled);
        // What the Web UI / `temporal workflow list` filter finds.
        await eventually(async () => {
          for await (const w of env.client.workflow.list({ query: `WorkflowId = '${workflowId}' AND VlaWaitingOn IS NOT NULL` })) return w.workflowId;
          return undefined;
        }, 'the visibility store to list the waiting workflow');

        // The worker comes (the queue was right after all): the mark is cleared and the run completes.
        const late = await geminiWorker(misspelled, gemini.baseUrl);
        const result = await late.runUntil(handle.result());
        expect(result.counts.done).toBe(2);
        const after = await handle.describe();
        expect(after.typedSearchAttributes.get(VlaWaitingOn)).toBeUndefined();
      });
    },
    180_000,
  );
});
