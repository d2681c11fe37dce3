import { createRelabelActivities } from './relabel/activities';
import { createSmokeActivities } from './smoke';
import { createShardActivities } from './training/shard';
import type { ObjectStore } from './store/types';
import { createTrainingActivities, type TrainingDeps } from './training/train';

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
    ...createShardActivities({ store: deps.store }),
  };
}

/** The activities of the Gemini worker: model calls only, under the queue's rate limit. */
export function createGeminiActivities(deps: ActivityDeps) {
  const { labelGemini } = createRelabelActivities(deps);
  return { labelGemini };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>;

/** What the GPU worker's activities need: the store, scratch space, the Python environment. */
export type GpuActivityDeps = TrainingDeps;

/** The activities of a GPU worker: the trainer, one run at a time. */
export function createGpuActivities(deps: GpuActivityDeps) {
  return createTrainingActivities(deps);
}
