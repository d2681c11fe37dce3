import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createShardActivities } from '../../activities/shard/activities';
import { FileStore } from '../../activities/store';
import { INVALID_ACTIVITY_INPUT } from '../../data-schemas/failures';
import { ShardActivities } from '../../data-schemas/shard';
import { fileUri } from '../../data-schemas/uri';
import { applicationFailureOf } from '../helpers/failures';

const dir = mkdtempSync(join(tmpdir(), 'shard-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const activities = createShardActivities({ store: new FileStore(), hooks: () => ({ heartbeat: () => undefined }) });
const outputUri = fileUri(join(dir, 'shards'));


describe('the shard activities parse their input at the border (data-schemas/shard.ts, ShardActivities)', () => {
  it('registers exactly the activities the contract declares', () => {
    expect(Object.keys(activities).sort()).toEqual(Object.keys(ShardActivities.activities).sort());
  });

  it('a writeShard of a split the plan cannot have fails non-retryable, naming the field, before any store read', async () => {
    const failure = await applicationFailureOf(activities.writeShard({ outputUri, split: 'test' as 'train', index: 0 }));
    expect(failure.type).toBe(INVALID_ACTIVITY_INPUT);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/writeShard: invalid input: .*split/);
  });

  it('a planShards with a relative dataset URI fails non-retryable instead of reading a path relative to the worker', async () => {
    const failure = await applicationFailureOf(
      activities.planShards({ datasetUri: 'd_lan', outputUri, seed: 0, validationFraction: 0.05, targetShardBytes: 1 << 20, directionLabels: true }),
    );
    expect(failure.type).toBe(INVALID_ACTIVITY_INPUT);
    expect(failure.message).toMatch(/planShards: invalid input: .*datasetUri/);
  });

  it('a verifyShards with a negative shard index fails non-retryable', async () => {
    const failure = await applicationFailureOf(activities.verifyShards({ outputUri, shards: [{ split: 'train', index: -1 }] }));
    expect(failure.type).toBe(INVALID_ACTIVITY_INPUT);
  });
});
