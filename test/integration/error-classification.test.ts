import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { classifyActivityError } from '../../activities/failures';
import { createObjectStore, FileStore, StoreErrorCode } from '../../activities/store';
import { TrainingFailure } from '../../data-schemas/training';
import { fileUri, joinUri } from '../../data-schemas/uri';
import type { PythonEnv } from '../../activities/runtime/python-env';
import type { storeSmoke, trainLora } from '../../workflows';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuAndGpuWorkers, withCpuWorker } from '../helpers/workers';

const exec = promisify(execFile);

/** The failure's ApplicationFailure and the attempt the activity failed on (ActivityTaskStarted's `attempt`, recorded for the last one). */
async function failureOf(handle: WorkflowHandle): Promise<{ failure: ApplicationFailure; attempt: number | undefined }> {
  const err = await handle.result().then(
    (value: unknown) => new Error(`expected a failure, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ActivityFailure);
  const failure = (cause as ActivityFailure).cause;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  const started = (await handle.fetchHistory()).events?.find((e) => e.activityTaskStartedEventAttributes)?.activityTaskStartedEventAttributes;
  return { failure: failure as ApplicationFailure, attempt: started?.attempt ?? undefined };
}

/** Never started: these runs fail before the trainer would run. */
const NO_PYTHON: PythonEnv = { python: '/nonexistent/python', venvDir: '/nonexistent', env: {} };

describe('every activity error is classified (real dev server, real S3 server, real files)', () => {
  const s3 = inject('s3');
  let env: TemporalTestEnv;
  let dir: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-errors-'));
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const smoke = (taskQueue: string, outputUri: string): Promise<WorkflowHandle<typeof storeSmoke>> =>
    env.client.workflow.start<typeof storeSmoke>('storeSmoke', { taskQueue, workflowId: `errors-smoke-${randomUUID()}`, args: [{ outputUri, text: 'hello' }] });

  it('a write onto an existing directory fails at attempt 1, non-retryable, naming the URI', async () => {
    const target = join(dir, 'a-directory');
    mkdirSync(target);
    const outputUri = fileUri(target);
    await withCpuWorker(env, new FileStore(), 'errors-dir', async (taskQueue) => {
      const { failure, attempt } = await failureOf(await smoke(taskQueue, outputUri));
      expect(failure.type).toBe(StoreErrorCode.PathConflict);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain(outputUri);
      expect(failure.message).toContain('a directory is in the way');
      expect(attempt).toBe(1);
    });
  });

  it('a write onto a full disk fails at attempt 1 as STORE_FULL, leaving no temp file', async (ctx) => {
    const mountPoint = join(dir, 'tiny-disk');
    mkdirSync(mountPoint);
    try {
      await exec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
    } catch (err) {
      ctx.skip(`cannot mount a 1 MiB tmpfs here (needs root): ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      return;
    }
    try {
      // Fill it: a 1 MiB tmpfs takes a little less than 1 MiB of file data.
      const filler = join(mountPoint, 'filler');
      let full: unknown;
      try {
        writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
      } catch (err) {
        full = err;
      }
      expect(String(full)).toMatch(/ENOSPC/);
      // A full disk outside the store (a scratch directory) is classified the same way.
      expect(classifyActivityError(full)).toMatchObject({ type: StoreErrorCode.Full, nonRetryable: true });
      const outputUri = fileUri(join(mountPoint, 'out', 'hello.txt'));
      await withCpuWorker(env, new FileStore(), 'errors-full', async (taskQueue) => {
        const { failure, attempt } = await failureOf(await smoke(taskQueue, outputUri));
        expect(failure.type).toBe(StoreErrorCode.Full);
        expect(failure.nonRetryable).toBe(true);
        expect(failure.message).toContain(outputUri);
        expect(failure.message).toContain('ENOSPC');
        expect(attempt).toBe(1);
      });
      const { stdout } = await exec('ls', ['-A', join(mountPoint, 'out')]).catch(() => ({ stdout: '' }));
      expect(stdout.trim()).toBe('');
    } finally {
      await exec('umount', [mountPoint]);
    }
  });

  describe('trainLora', () => {
    const trainInput = (gpuTaskQueue: string, shardsUri: string, outputUri: string) => ({
      shardsUri,
      baseModel: join(dir, 'no-model-needed'),
      outputUri,
      maxSteps: 1,
      gpuTaskQueue,
      // Several attempts allowed, quickly: a failure classified too late shows as attempt > 1.
      retry: { maxAttempts: 3, initialIntervalSeconds: 0.1 },
    });
    const train = (cpu: string, input: unknown): Promise<WorkflowHandle<typeof trainLora>> =>
      env.client.workflow.start<typeof trainLora>('trainLora', { taskQueue: cpu, workflowId: `errors-train-${randomUUID()}`, args: [input] });

    it('a shardsUri that is not JSON (a passwd file, a truncated shards.json) fails at attempt 1, naming the file and what was expected', async () => {
      const passwd = join(dir, 'passwd');
      writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n');
      const truncated = join(dir, 'truncated', 'shards.json');
      mkdirSync(join(dir, 'truncated'));
      writeFileSync(truncated, '{"format": "webdataset", "formatVersion": 1, "shards": [{"path": "train/sha');
      await withCpuAndGpuWorkers(env, { store: createObjectStore({ roots: { readWrite: [fileUri(dir)], readOnly: [] } }), workDir: join(dir, 'gpu-work'), python: NO_PYTHON }, async ({ cpu, gpu }) => {
        for (const file of [passwd, truncated]) {
          const uri = fileUri(file);
          const { failure, attempt } = await failureOf(await train(cpu, trainInput(gpu, uri, fileUri(join(dir, 'runs', randomUUID())))));
          expect(failure.type).toBe(TrainingFailure.shardsNotFound);
          expect(failure.nonRetryable).toBe(true);
          expect(failure.message).toContain(uri);
          expect(failure.message).toContain('not valid JSON (expected a shard manifest, the shards.json that shardDataset writes)');
          expect(attempt).toBe(1);
        }
      });
    });

    it('an output the store refuses (S3 with a wrong secret key, or no credentials at all) fails at attempt 1, naming the credentials and the endpoint', async () => {
      const s3Options = { endpoint: s3.endpoint, region: s3.region };
      const roots = { readWrite: [`s3://${s3.bucket}`], readOnly: [] };
      const cases = [
        { store: createObjectStore({ roots, s3: { ...s3Options, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: `${s3.secretAccessKey}-wrong` } } }), says: 'access denied' },
        // The SDK's default chain finds nothing: no variables, no profile, no instance metadata.
        { store: createObjectStore({ roots, s3: s3Options }), says: 'no S3 credentials found' },
      ];
      const names = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_EC2_METADATA_DISABLED'];
      const saved = new Map(names.map((name) => [name, process.env[name]]));
      for (const name of names) delete process.env[name];
      process.env.AWS_EC2_METADATA_DISABLED = 'true';
      try {
        for (const { store, says } of cases) {
          const prefix = `s3://${s3.bucket}/errors-${randomUUID().slice(0, 8)}`;
          const outputUri = `${prefix}/run`;
          await withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-work'), python: NO_PYTHON }, async ({ cpu, gpu }) => {
            const { failure, attempt } = await failureOf(await train(cpu, trainInput(gpu, `${prefix}/shards.json`, outputUri)));
            expect(failure.type).toBe(StoreErrorCode.AccessDenied);
            expect(failure.nonRetryable).toBe(true);
            expect(failure.message).toContain(joinUri(outputUri, 'result.json'));
            expect(failure.message).toContain(says);
            expect(failure.message).toContain('AWS_ACCESS_KEY_ID');
            expect(failure.message).toContain(s3.endpoint);
            expect(attempt).toBe(1);
          });
        }
      } finally {
        for (const [name, value] of saved) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
    });
  });
});
