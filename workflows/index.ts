export { relabelDataset, relabelProgressQuery } from './relabel/relabel-dataset';
export { relabelTrajectory } from './relabel/relabel-trajectory';
export { storeSmoke } from './smoke/store-smoke';
export { trainLora, trainingProgressQuery, trainingProgressSignal } from './training/train-lora';
export { shardDataset, shardProgressQuery } from './training/shard-dataset';
export { vqaSweep } from './vqa/vqa-sweep';
export { vqaEvaluate, vqaEvaluateProgressQuery } from './vqa/vqa-evaluate';
export { nightlyEvaluation } from './vqa/nightly-evaluation';
