import { createSmokeActivities } from './smoke';
import type { ObjectStore } from './store/types';

/** Everything activities need from the outside, injected once per worker. */
export interface ActivityDeps {
  store: ObjectStore;
}

/** All activities of the CPU worker. */
export function createCpuActivities(deps: ActivityDeps) {
  return {
    ...createSmokeActivities(deps),
  };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>;
