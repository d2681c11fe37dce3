import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../activities/store/file-store';
import { fileUri } from '../../data-schemas/uri';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';
import { connectTestTemporal, recordHistory, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

describe('storeSmoke workflow on a real dev server', () => {
  let env: TemporalTestEnv;
  let dir: string;
  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-smoke-'));
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const withWorker = <T>(fn: (taskQueue: string) => Promise<T>): Promise<T> => withCpuWorker(env, new FileStore(), 'smoke', fn);

  it('writes through the store exactly once and tags the run with a search attribute', async () => {
    const outputUri = fileUri(join(dir, 'nested', 'hello.txt'));
    await withWorker(async (taskQueue) => {
      const first = await env.client.workflow.execute('storeSmoke', { taskQueue, workflowId: `smoke-${taskQueue}-1`, args: [{ outputUri, text: 'hello' }] });
      expect(first).toMatchObject({ uri: outputUri, bytes: 5, created: true });
      expect(first.sha256).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
      const handle = env.client.workflow.getHandle(`smoke-${taskQueue}-1`);
      const described = await handle.describe();
      expect(described.searchAttributes.VlaStage).toEqual(['smoke']);
      await recordHistory(env, 'storeSmoke', `smoke-${taskQueue}-1`);

      // A second run with other text keeps the first bytes: create-if-absent, not overwrite.
      const second = await env.client.workflow.execute('storeSmoke', { taskQueue, workflowId: `smoke-${taskQueue}-2`, args: [{ outputUri, text: 'other' }] });
      expect(second).toMatchObject({ created: false, bytes: 5, sha256: first.sha256 });
    });
    expect(readFileSync(join(dir, 'nested', 'hello.txt'), 'utf8')).toBe('hello');
  });

  it('fails at once, non-retryable, naming every bad field of the input', async () => {
    await withWorker(async (taskQueue) => {
      const err = await env.client.workflow
        .execute('storeSmoke', { taskQueue, workflowId: `smoke-${taskQueue}-bad`, args: [{ outputUri: 'ftp://nope', text: '', extra: 1 }] })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      const failure = cause as ApplicationFailure;
      expect(failure.type).toBe(INVALID_WORKFLOW_INPUT);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain('outputUri: must be an object URI: expected file:///abs/path or s3://bucket/key');
      expect(failure.message).toMatch(/text: Too small/);
      expect(failure.message).toMatch(/Unrecognized key: "extra"/);
    });
  });
});
