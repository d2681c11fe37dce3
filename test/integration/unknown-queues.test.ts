import { QueryNotRegisteredError, type WorkflowHandle } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { FileStore } from '../../activities/store';
import type { EvalCampaignInputRaw } from '../../data-schemas/robot';
import { fileUri } from '../../data-schemas/uri';
import { TaskQueue } from '../../data-schemas/workflows';
import type { evalCampaign, vqaSweep } from '../../workflows';
import type { VqaSweepProgress } from '../../workflows/vqa/vqa-sweep';
import type { VqaSweepInput } from '../../data-schemas/vqa';
import { REPO_ROOT } from '../../infra/config';
import type { CampaignProgress } from '../../workflows/robot/eval-campaign';
import { VlaWaitingOn } from '../../workflows/search-attributes';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

/** Reads a workflow's `progress` query until `ready` holds (the query exists once the workflow's first activity returned). */
async function progressWhen<P>(handle: WorkflowHandle, ready: (p: P) => boolean): Promise<P | undefined> {
  const read = async (): Promise<P | undefined> => {
    try {
      return await handle.query<P>('progress');
    } catch (e) {
      if (e instanceof QueryNotRegisteredError) return undefined;
      throw e;
    }
  };
  const until = Date.now() + 120_000;
  let progress = await read();
  while ((progress === undefined || !ready(progress)) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    progress = await read();
  }
  return progress;
}

describe('workflows that send work to a queue no worker serves (real dev server)', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-campaign-watch-'));
  });
  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an evaluation campaign names a misspelled station queue (progress query, VlaWaitingOn) and keeps its episode waiting', async () => {
    const misspelled = `sim-l-${randomUUID().slice(0, 8)}`;
    const queue = TaskQueue.station(misspelled);
    const input: EvalCampaignInputRaw = { tasks: ['pick_up'], trials: 1, stations: [misspelled], outputUri: fileUri(join(dir, 'campaign')), noWorkerWarningSeconds: 1 };
    await withCpuWorker(env, store, 'campaign-watch-cpu', async (cpuQueue) => {
      const handle = await env.client.workflow.start<typeof evalCampaign>('evalCampaign', { taskQueue: cpuQueue, workflowId: `${cpuQueue}-typo`, args: [input] });
      try {
        const progress = await progressWhen<CampaignProgress>(handle, (p) => p.waitingOn !== undefined);
        expect(progress?.waitingOn).toEqual([queue]);
        // Still waiting for the station, not failed: the episode runs once a station worker comes.
        expect(progress?.done).toBe(0);
        const described = await handle.describe();
        expect(described.status.name).toBe('RUNNING');
        expect(described.typedSearchAttributes.get(VlaWaitingOn)).toBe(queue);
      } finally {
        await handle.terminate('test done');
      }
    });
  });

  it('a VQA sweep names a misspelled backend queue (progress query, VlaWaitingOn) and keeps waiting for it', async () => {
    const misspelled = `vla-cpuu-${randomUUID().slice(0, 8)}`;
    const input: z.input<typeof VqaSweepInput> = {
      models: [{ name: 'oracle', backend: 'openai', baseUrl: 'http://127.0.0.1:9/v1', model: 'oracle-vlm' }],
      benchmarks: [{ benchmark: 'mmbench-en', uri: fileUri(join(REPO_ROOT, 'data', 'samples', 'vqa-samples', 'mmbench')) }],
      outputUri: fileUri(join(dir, 'sweep')),
      limit: 2,
      taskQueues: { openai: misspelled },
      noWorkerWarningSeconds: 1,
    };
    await withCpuWorker(env, store, 'sweep-watch-cpu', async (cpuQueue) => {
      const handle = await env.client.workflow.start<typeof vqaSweep>('vqaSweep', { taskQueue: cpuQueue, workflowId: `${cpuQueue}-typo`, args: [input] });
      try {
        const progress = await progressWhen<VqaSweepProgress>(handle, (p) => p.waitingOn !== undefined);
        expect(progress?.waitingOn).toEqual([misspelled]);
        expect(progress?.finished).toBe(0);
        const described = await handle.describe();
        expect(described.status.name).toBe('RUNNING');
        expect(described.typedSearchAttributes.get(VlaWaitingOn)).toBe(misspelled);
      } finally {
        await handle.terminate('test done');
      }
    });
  });
});
