import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTaskQueueActivities } from '../../activities/task-queues';
import { REPO_ROOT } from '../../infra/config';
import { connectTestTemporal, uniqueTaskQueue, type TemporalTestEnv } from '../helpers/temporal';

/**
 * infra/deploy/slurm/gpu-worker.sbatch run as Slurm runs it (bash, from the submit directory):
 * its worker polls, and the SIGTERM Slurm sends before the time limit stops the worker gracefully.
 */
describe('the Slurm GPU worker script', () => {
  let env: TemporalTestEnv;
  let dir: string;
  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-slurm-'));
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('polls with the environment of its file and stops its worker on SIGTERM', { timeout: 180_000 }, async () => {
    const { address, namespace } = inject('temporal');
    const envFile = join(dir, 'gpu-worker.env');
    // The example's settings, pointed at the test server; the S3 endpoint is never reached by an idle worker.
    writeFileSync(
      envFile,
      [
        `TEMPORAL_ADDRESS=${address}`,
        `TEMPORAL_NAMESPACE=${namespace}`,
        'VLA_STORE_URI=s3://vla-data/runs',
        'VLA_STORE_ROOTS=s3://vla-data',
        'VLA_STORE_READ_ROOTS=',
        'AWS_ENDPOINT_URL_S3=http://127.0.0.1:9',
        'AWS_REGION=us-east-1',
        `VLA_STATE_DIR=${join(dir, 'state')}`,
      ].join('\n'),
    );
    const queue = uniqueTaskQueue('slurm-gpu');
    const job = spawn('bash', [join(REPO_ROOT, 'infra', 'deploy', 'slurm', 'gpu-worker.sbatch'), '--task-queue', queue], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, SLURM_SUBMIT_DIR: REPO_ROOT, SLURM_JOB_ID: '4242', WORKER_ENV_FILE: envFile, TMPDIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: whatever is left of the job afterwards is stopped with it.
      detached: true,
    });
    let log = '';
    job.stdout.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    job.stderr.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    const exited = once(job, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const queues = createTaskQueueActivities({ workflowService: env.client.workflowService, namespace });
      let pollers = 0;
      for (let attempt = 0; attempt < 240 && pollers === 0 && job.exitCode === null; attempt++) {
        await sleep(500);
        pollers = (await queues.taskQueuePollers({ queue, role: 'activity' })).pollers;
      }
      expect(pollers, log).toBeGreaterThan(0);

      job.kill('SIGTERM');
      const [code, signal] = await exited;
      expect({ code, signal }, log).toEqual({ code: 0, signal: null });
      expect(log).toContain('stopping the worker');
      expect(log).toMatch(/state: 'STOPPED'/);
    } finally {
      try {
        process.kill(-job.pid!, 'SIGKILL');
      } catch {
        // The group is gone: the job and its worker have exited.
      }
    }
  });
});
