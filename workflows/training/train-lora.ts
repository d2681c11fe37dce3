import { ActivityCancellationType, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { TrainingActivities } from '../../activities/training/train';
import { NON_RETRYABLE_TRAINING_FAILURES, TRAINING_PROGRESS_SIGNAL, TrainLoraInput, type TrainingProgress, type TrainLoraResult } from '../../data-schemas/training';
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

  const gpu = proxyActivities<TrainingActivities>({
    taskQueue: input.gpuTaskQueue,
    // A run can take weeks; a lost worker is noticed by the heartbeat timeout instead.
    startToCloseTimeout: '30 days',
    heartbeatTimeout: `${input.retry.heartbeatTimeoutSeconds} seconds`,
    // Cancellation waits until the trainer has stopped, so the last checkpoint is settled.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: `${input.retry.initialIntervalSeconds} seconds`,
      backoffCoefficient: 2,
      maximumInterval: '10 minutes',
      maximumAttempts: input.retry.maxAttempts,
      nonRetryableErrorTypes: [...NON_RETRYABLE_TRAINING_FAILURES],
    },
  });
  const result = await gpu.trainLora(input);
  progress = { ...progress, phase: 'done', step: result.steps };
  return result;
}
