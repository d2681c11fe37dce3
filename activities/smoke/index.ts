import { createHash } from 'node:crypto';
import { implement } from '../../data-schemas/activity-contract';
import { SmokeActivities } from '../../data-schemas/workflows';
import type { ObjectStore } from '../store/types';

export interface SmokeDeps {
  store: ObjectStore;
}

export function createSmokeActivities({ store }: SmokeDeps) {
  return implement(SmokeActivities, 'cpu', {
    // Store errors are classified by the worker's interceptor (activities/failures.ts), not here.
    async writeSmokeObject(input) {
      const written = await store.putIfAbsent(input.outputUri, input.text, { contentType: 'text/plain; charset=utf-8' });
      const stored = written.created ? Buffer.from(input.text) : await store.get(input.outputUri);
      return {
        uri: input.outputUri,
        sha256: createHash('sha256').update(stored).digest('hex'),
        bytes: stored.length,
        created: written.created,
      };
    },
  });
}
