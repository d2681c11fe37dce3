import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createStationActivities } from '../../activities/robot/episode/station-activities';
import { SimStationDriver } from '../../activities/robot/station/sim';
import { FileStore } from '../../activities/store';
import { StoreErrorCode } from '../../data-schemas/failures';
import { CAMPAIGN_REPORT_FILE, CAMPAIGN_SUMMARY_FILE, EPISODE_RECORD_FILE, STATION_OWNER_FILE, StationOwnerFile } from '../../data-schemas/robot';
import { fileUri } from '../../data-schemas/uri';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function station(): { stateDir: string; outputUri: string; activities: ReturnType<typeof createStationActivities> } {
  const dir = mkdtempSync(join(tmpdir(), 'vla-robot-files-'));
  dirs.push(dir);
  const stateDir = join(dir, 'station');
  const activities = createStationActivities({ stationId: 'sim-1', driver: new SimStationDriver({ seed: 0 }), store: new FileStore(), stateDir });
  return { stateDir, outputUri: fileUri(join(dir, 'episode')), activities };
}

describe('robot store files (data-schemas/robot.ts)', () => {
  it('names the files episodes and campaigns leave in one contract module', () => {
    expect([EPISODE_RECORD_FILE, CAMPAIGN_SUMMARY_FILE, CAMPAIGN_REPORT_FILE, STATION_OWNER_FILE]).toEqual(['episode.json', 'summary.json', 'report.html', 'owner.json']);
  });

  it("the station's owner.json is written and read by its schema, and removed on release", async () => {
    const { stateDir, outputUri, activities } = station();
    await activities.stationReset({ episodeId: 'ep-1', outputUri, instruction: 'put the carrot on the plate' });
    const file = join(stateDir, STATION_OWNER_FILE);
    expect(StationOwnerFile.parse(JSON.parse(readFileSync(file, 'utf8')))).toMatchObject({ episodeId: 'ep-1' });
    await expect(activities.stationObserve({ episodeId: 'ep-2', outputUri })).rejects.toThrow('station sim-1 belongs to episode ep-1, not ep-2');
    await activities.stationRelease({ episodeId: 'ep-1' });
    expect(existsSync(file)).toBe(false);
    await expect(activities.stationObserve({ episodeId: 'ep-1', outputUri })).rejects.toThrow('station sim-1 has no episode: reset it first');
  });

  it('an owner.json that is not an owner record fails naming the file, never read as "no owner"', async () => {
    const { stateDir, outputUri, activities } = station();
    writeFileSync(join(stateDir, STATION_OWNER_FILE), JSON.stringify({ episodeId: 42 }));
    const failure = await activities.stationObserve({ episodeId: 'ep-1', outputUri }).catch((err: unknown) => err);
    expect(failure).toMatchObject({ type: StoreErrorCode.Other, nonRetryable: true });
    expect(String((failure as Error).message)).toMatch(/owner\.json.*expected the station's arm owner/);
  });
});
