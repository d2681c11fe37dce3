import { createHash } from 'node:crypto';
import type { StoreSmokeInput, StoreSmokeResult } from '../../data-schemas/workflows';
import type { ObjectStore } from '../store/types';

export interface SmokeDeps {
  store: ObjectStore;
}

export function createSmokeActivities({ store }: SmokeDeps) {
  return {
    /**
     * Writes the text once; a retry or re-run finds it and reports the stored object. Its store
     * errors are classified by the worker's interceptor (activities/failures.ts), not here.
     */
    async writeSmokeObject(input: StoreSmokeInput): Promise<StoreSmokeResult> {
      const written = await store.putIfAbsent(input.outputUri, input.text, { contentType: 'text/plain; charset=utf-8' });
      const stored = written.created ? Buffer.from(input.text) : await store.get(input.outputUri);
      return {
        uri: input.outputUri,
        sha256: createHash('sha256').update(stored).digest('hex'),
        bytes: stored.length,
        created: written.created,
      };
    },
  };
}

export type SmokeActivities = ReturnType<typeof createSmokeActivities>;
