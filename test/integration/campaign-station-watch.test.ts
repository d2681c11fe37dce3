import { QueryNotRegisteredError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../activities/store';
import type { EvalCampaignInputRaw } from '../../data-schemas/robot';
import { fileUri } from '../../data-schemas/uri';
import { TaskQueue } from '../../data-schemas/workflows';
import type { evalCampaign } from '../../workflows';
import type { CampaignProgress } from '../../workflows/robot/eval-campaign';
import { VlaWaitingOn } from '../../workflows/search-attributes';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

describe('evalCampaign on a station no worker serves (real dev server)', () => {
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

  it('names the misspelled station queue (progress query, VlaWaitingOn) and keeps its episode waiting', async () => {
    const misspelled = `sim-l-${randomUUID().slice(0, 8)}`;
    const queue = TaskQueue.station(misspelled);
    const input: EvalCampaignInputRaw = { tasks: ['pick_up'], trials: 1, stations: [misspelled], outputUri: fileUri(join(dir, 'campaign')), noWorkerWarningSeconds: 1 };
    await withCpuWorker(env, store, 'campaign-watch-cpu', async (cpuQueue) => {
      const handle = await env.client.workflow.start<typeof evalCampaign>('evalCampaign', { taskQueue: cpuQueue, workflowId: `${cpuQueue}-typo`, args: [input] });
      try {
        // The query exists once the trials are planned (the campaign's first activity).
        const read = async (): Promise<CampaignProgress | undefined> => {
          try {
            return await handle.query<CampaignProgress>('progress');
          } catch (e) {
            if (e instanceof QueryNotRegisteredError) return undefined;
            throw e;
          }
        };
        const until = Date.now() + 120_000;
        let progress = await read();
        while (progress?.waitingOn === undefined && Date.now() < until) {
          await new Promise((resolve) => setTimeout(resolve, 250));
          progress = await read();
        }
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
});
