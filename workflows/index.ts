export { relabelDataset, relabelProgressQuery } from './relabel/relabel-dataset';
export { relabelTrajectory } from './relabel/relabel-trajectory';
export { storeSmoke } from './smoke/store-smoke';
