import { proxyActivities } from '@temporalio/workflow';
import type { SmokeActivities } from '../../activities/smoke';
import { StoreSmokeInput, type StoreSmokeResult } from '../../data-schemas/workflows';
import { parseWorkflowInput } from '../input';
import { VlaStage, upsertKeywords } from '../search-attributes';

const { writeSmokeObject } = proxyActivities<SmokeActivities>({
  startToCloseTimeout: '1 minute',
  // Store outages heal; bad URIs and credentials fail non-retryable inside the activity.
  retry: { maximumAttempts: 5, initialInterval: '1 second' },
});

/** Proves the worker bundle loads and an activity writes through the object store, exactly once. */
export async function storeSmoke(rawInput: unknown): Promise<StoreSmokeResult> {
  const input = parseWorkflowInput('storeSmoke', StoreSmokeInput, rawInput);
  upsertKeywords([{ key: VlaStage, value: 'smoke' }]);
  return await writeSmokeObject(input);
}
