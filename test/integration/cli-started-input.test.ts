import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { defaultPayloadConverter } from '@temporalio/common';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ShardDatasetInput, defaultShardOutput } from '../../data-schemas/training';
import { fileUri } from '../../data-schemas/uri';
import { REPO_ROOT } from '../../infra/config';
import { connectTestTemporal, devServerEnv, type TemporalTestEnv } from '../helpers/temporal';

/**
 * The real `vla shard` command starts its workflow with only what the user gave (and the output
 * root it resolves for the workflow id): an option left out is absent from the input recorded in
 * the history, so the workflow's own parse applies the schema's default (docs/design.md, "One
 * default, in the schema"). No worker runs the workflow; the test reads its start and terminates it.
 */
describe('vla shard --no-wait', () => {
  let env: TemporalTestEnv;
  let dir: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-cli-input-'));
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records only the options given in the started input', async () => {
    // Never created: nothing reads it before the workflow is terminated.
    const dataset = join(dir, 'dlan');
    const cliEnv: NodeJS.ProcessEnv = { ...devServerEnv(inject('temporal').address, env.namespace), VLA_STATE_DIR: join(dir, 'state') };
    delete cliEnv.VLA_MULTI_HOST;
    await promisify(execFile)(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), 'shard', dataset, '--seed', '3', '--no-wait'], {
      env: cliEnv,
      cwd: REPO_ROOT,
      timeout: 300_000,
    });

    const datasetUri = fileUri(dataset);
    const outputUri = defaultShardOutput(datasetUri, 3, 0.05);
    const handle = env.client.workflow.getHandle(WorkflowIds.shardDataset(outputUri));
    try {
      const history = await handle.fetchHistory();
      const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      expect(payload).toBeDefined();
      const input = defaultPayloadConverter.fromPayload(payload!);
      expect(input).toEqual({ datasetUri, seed: 3, outputUri });
      // What the workflow makes of it: the schema's defaults for everything left out.
      expect(ShardDatasetInput.parse(input)).toMatchObject({ validationFraction: 0.05, targetShardBytes: 256 * 2 ** 20, maxConcurrentShards: 4, directionLabels: true });
    } finally {
      await handle.terminate('test: only its start is read');
    }
  });
});
