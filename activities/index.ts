import { createRelabelActivities } from './relabel/activities';
import { createSmokeActivities } from './smoke';
import type { ObjectStore } from './store/types';

/** Everything activities need from the outside, injected once per worker. */
export interface ActivityDeps {
  store: ObjectStore;
  /** Only the Gemini worker gets these, from its own environment. */
  gemini?: { apiKey?: string; baseUrl?: string };
}

/** All activities of the CPU worker. */
export function createCpuActivities(deps: ActivityDeps) {
  const { labelGemini: _onGeminiQueue, ...relabel } = createRelabelActivities({ store: deps.store });
  return {
    ...createSmokeActivities(deps),
    ...relabel,
  };
}

/** The activities of the Gemini worker: model calls only, under the queue's rate limit. */
export function createGeminiActivities(deps: ActivityDeps) {
  const { labelGemini } = createRelabelActivities(deps);
  return { labelGemini };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>;
