import { ScheduleNotFoundError, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createObjectStore, FileStore, StoreErrorCode, type ObjectStore } from '../../activities/store';
import { MULTI_HOST_NEEDS_S3 } from '../../data-schemas/config';
import { fileUri } from '../../data-schemas/uri';
import { REPO_ROOT } from '../../infra/config';
import { simulateSample } from '../helpers/datasets';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

/** The workflow's failure: the multi-host refusal of `uri`, non-retryable, after exactly one attempt. */
async function expectNotShared(handle: WorkflowHandle, uri: string): Promise<void> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${uri} should be refused`).toBeInstanceOf(WorkflowFailedError);
  const activity = (err as WorkflowFailedError).cause;
  expect(activity).toBeInstanceOf(ActivityFailure);
  const failure = (activity as ActivityFailure).cause as ApplicationFailure;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure.type).toBe(StoreErrorCode.NotShared);
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message).toContain(MULTI_HOST_NEEDS_S3);
  expect(failure.message).toContain(uri);
  const { events } = await handle.fetchHistory();
  const started = (events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
  expect(started).toHaveLength(1);
  expect(started[0]!.activityTaskStartedEventAttributes!.attempt).toBe(1);
}

describe('workers on several hosts need an s3:// store (real dev server, real S3 server)', () => {
  let env: TemporalTestEnv;
  let dir: string;
  let multiHost: ObjectStore;
  let s3Root: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-multi-host-it-'));
    const s3 = inject('s3');
    s3Root = `s3://${s3.bucket}/multi-host-${Date.now()}`;
    // What `vla worker` builds with VLA_MULTI_HOST=1 and an s3:// store.
    multiHost = createObjectStore({
      roots: { readWrite: [s3Root], readOnly: [] },
      multiHost: true,
      s3: { endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } },
    });
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a relabel whose dataset is file:// fails at its first activity, non-retryably, with the reason', async () => {
    const datasetUri = fileUri(join(dir, 'sim'));
    await simulateSample(new FileStore(), datasetUri, ['pick up the eggplant'], 1, 0);
    await withCpuWorker(env, multiHost, 'multi-host-relabel', async (taskQueue) => {
      const handle = await env.client.workflow.start('relabelDataset', { taskQueue, workflowId: `${taskQueue}-relabel`, args: [{ datasetUri, outputUri: `${s3Root}/dlan` }] });
      await expectNotShared(handle, datasetUri);
    });
    expect(readdirSync(join(dir, 'sim'))).not.toContain('labels');
  });

  it('a file:// output is refused before anything is written; an s3:// one is written', async () => {
    const outputUri = fileUri(join(dir, 'out', 'smoke.txt'));
    await withCpuWorker(env, multiHost, 'multi-host-smoke', async (taskQueue) => {
      const refused = await env.client.workflow.start('storeSmoke', { taskQueue, workflowId: `${taskQueue}-file`, args: [{ outputUri, text: 'x' }] });
      await expectNotShared(refused, outputUri);
      const written = await env.client.workflow.execute('storeSmoke', { taskQueue, workflowId: `${taskQueue}-s3`, args: [{ outputUri: `${s3Root}/smoke.txt`, text: 'x' }] });
      expect(written).toMatchObject({ created: true });
    });
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  /** Runs the `vla` CLI with VLA_MULTI_HOST=1 against the suite's dev server; its exit code and stderr. */
  async function vlaMultiHost(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
    const { address, namespace } = inject('temporal');
    const child = spawn(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, VLA_STATE_DIR: join(dir, 'state'), VLA_MULTI_HOST: '1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stderr };
  }

  it('`vla worker` with VLA_MULTI_HOST=1 refuses to start on the default file:// store', async () => {
    const { code, stderr } = await vlaMultiHost(['worker', 'cpu', '--task-queue', 'never-polled']);
    expect(code).toBe(1);
    expect(stderr).toContain(MULTI_HOST_NEEDS_S3);
    expect(stderr).toContain(`VLA_STORE_URI=${fileUri(join(dir, 'state', 'store'))} (the default)`);
  }, 120_000);

  it('`vla schedule nightly` with VLA_MULTI_HOST=1 refuses file:// paths before creating the schedule', async () => {
    const scheduleId = `multi-host-${Date.now()}`;
    const { code, stderr } = await vlaMultiHost(['schedule', 'nightly', '--id', scheduleId, '--runs', `${s3Root}/runs`, '--out', join(dir, 'nightly'), '--benchmark', `mmstar=${s3Root}/mmstar`], { VLA_STORE_URI: s3Root });
    expect(code).toBe(1);
    expect(stderr).toContain(MULTI_HOST_NEEDS_S3);
    expect(stderr).toContain(fileUri(join(dir, 'nightly')));
    const described = await env.client.schedule.getHandle(scheduleId).describe().catch((e: unknown) => e);
    expect(described).toBeInstanceOf(ScheduleNotFoundError);
  }, 120_000);
});
