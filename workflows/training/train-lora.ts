import { defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import { TRAINING_PROGRESS_SIGNAL, TrainingActivities, TrainingPresets, TrainLoraInput, type TrainingProgress, type TrainLoraResult } from '../../data-schemas/training';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';
import { VlaDataset, VlaModel, VlaStage, upsertKeywords } from '../search-attributes';

export const trainingProgressSignal = defineSignal<[TrainingProgress]>(TRAINING_PROGRESS_SIGNAL);
export const trainingProgressQuery = defineQuery<TrainingProgress>('progress');

/**
 * LoRA-trains a base VLM on a shard set. One long activity on the GPU queue runs the trainer; a lost
 * worker or machine is retried and resumes from the last checkpoint in the store; cancelling the
 * workflow stops the trainer and waits until it has stopped.
 */
export async function trainLora(raw: unknown): Promise<TrainLoraResult> {
  const input = parseWorkflowInput('trainLora', TrainLoraInput, raw);
  upsertKeywords([
    { key: VlaStage, value: 'train' },
    { key: VlaDataset, value: input.shardsUri },
    { key: VlaModel, value: input.baseModel },
  ]);

  let progress: TrainingProgress = { phase: 'starting', attempt: 1, step: 0, totalSteps: 0 };
  setHandler(trainingProgressSignal, (next) => {
    progress = next;
  });
  setHandler(trainingProgressQuery, () => progress);

  const gpu = proxyFor(TrainingActivities, input.gpuTaskQueue, TrainingPresets.trainer(input.retry));
  const result = await gpu.trainLora(input);
  progress = { ...progress, phase: 'done', step: result.steps };
  return result;
}
