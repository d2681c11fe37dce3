import { workflowQueue } from '../../data-schemas/activity-contract';
import { SmokeActivities, SmokePresets, StoreSmokeInput, type StoreSmokeResult } from '../../data-schemas/workflows';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';
import { VlaStage, upsertKeywords } from '../search-attributes';

/** Proves the worker bundle loads and an activity writes through the object store, exactly once. */
export async function storeSmoke(rawInput: unknown): Promise<StoreSmokeResult> {
  const input = parseWorkflowInput('storeSmoke', StoreSmokeInput, rawInput);
  upsertKeywords([{ key: VlaStage, value: 'smoke' }]);
  const { writeSmokeObject } = proxyFor(SmokeActivities, workflowQueue('cpu'), SmokePresets.write);
  return await writeSmokeObject(input);
}
