import { ApplicationFailure } from '@temporalio/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCpuActivities, createGeminiActivities } from '../../activities';
import { stationWorkerActivities } from '../../activities/robot/episode/station-activities';
import { SimStationDriver } from '../../activities/robot/station/sim';
import { FileStore } from '../../activities/store';
import type { ActivityContract, ActivitySpec, WorkerRole } from '../../data-schemas/activity-contract';
import { INVALID_ACTIVITY_INPUT } from '../../data-schemas/failures';
import {
  CampaignActivities,
  EpisodeRecordActivities,
  RobotPolicyActivities,
  RobotVerifierActivities,
  StationActivities,
} from '../../data-schemas/robot';
import { fileUri } from '../../data-schemas/uri';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stationActivities() {
  const dir = mkdtempSync(join(tmpdir(), 'vla-robot-contracts-'));
  dirs.push(dir);
  const activities = stationWorkerActivities({ stationId: 'sim-1', driver: new SimStationDriver({ seed: 0 }), store: new FileStore(), stateDir: join(dir, 'station') });
  return { activities, outputUri: fileUri(join(dir, 'episode')) };
}

const ROBOT_CONTRACTS: ActivityContract<WorkerRole, Record<string, ActivitySpec>>[] = [StationActivities, RobotPolicyActivities, RobotVerifierActivities, EpisodeRecordActivities, CampaignActivities];

/** The names of the robot activities the contracts say a worker of this kind serves. */
const servedBy = (role: WorkerRole): string[] => ROBOT_CONTRACTS.filter((c) => c.roles.includes(role)).flatMap((c) => Object.keys(c.activities));

describe('the robot activity contracts (data-schemas/robot.ts)', () => {
  it("a station worker registers exactly the station's, the policy's and the records' activities", () => {
    expect(Object.keys(stationActivities().activities).sort()).toEqual(servedBy('station').sort());
    expect(servedBy('station').sort()).toEqual(['finalizeEpisode', 'policyStage', 'stationEvaluate', 'stationExecute', 'stationObserve', 'stationRelease', 'stationReset', 'stationSafeStop', 'verifyOracle']);
  });

  it('the CPU and Gemini workers register every robot activity their kind serves', () => {
    const store = new FileStore();
    expect(Object.keys(createCpuActivities({ store }))).toEqual(expect.arrayContaining(servedBy('cpu')));
    expect(servedBy('cpu').sort()).toEqual(['finalizeEpisode', 'planCampaign', 'writeCampaignReport']);
    expect(Object.keys(createGeminiActivities({ store }))).toEqual(expect.arrayContaining(servedBy('gemini')));
    expect(servedBy('gemini').sort()).toEqual(['policyStage', 'verifyGemini']);
  });

  it('a station activity refuses a wrong input with a non-retryable failure naming the field, before the arm moves', async () => {
    const { activities, outputUri } = stationActivities();
    await activities.stationReset({ episodeId: 'ep-1', outputUri, instruction: 'put the carrot on the plate' });
    // A chunk without the step it was planned at could run twice after a retry: never sent to the arm.
    const err = await activities.stationExecute({ episodeId: 'ep-1', outputUri, chunk: [[0.01, 0, 0, 1]] } as never).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: INVALID_ACTIVITY_INPUT, nonRetryable: true });
    expect((err as Error).message).toMatch(/^stationExecute: invalid input: .*expectedStep/);
  });

  it('finalizeEpisode refuses a record that is not an episode record, naming where', async () => {
    const { activities } = stationActivities();
    const err = await activities.finalizeEpisode({ record: { formatVersion: 2 } as never }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ type: INVALID_ACTIVITY_INPUT, nonRetryable: true });
    expect((err as Error).message).toMatch(/^finalizeEpisode: invalid input: .*record\.formatVersion/);
  });
});
