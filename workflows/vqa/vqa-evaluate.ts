import { defineQuery, setHandler } from '@temporalio/workflow';
import { workflowQueue } from '../../data-schemas/activity-contract';
import { VqaEvaluateInput, VqaInferenceActivities, VqaPresets, VqaStoreActivities, type BenchmarkResult } from '../../data-schemas/vqa';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';

export interface VqaEvaluateProgress {
  total: number;
  pending: number;
  made: number;
  reused: number;
}
export const vqaEvaluateProgressQuery = defineQuery<VqaEvaluateProgress>('progress');

const store = proxyFor(VqaStoreActivities, workflowQueue('cpu'), VqaPresets.evaluationStore);

/**
 * One (model, benchmark): predicts every item that lacks a stored prediction under its key (the
 * model's identity, prompt, settings, item content), in batches on the backend's task queue, then
 * scores from the stored predictions. A re-run or a crashed worker redoes no finished item.
 */
export interface VqaEvaluateResult {
  score: BenchmarkResult;
  /** Predictions this run made, and those it found already stored. */
  made: number;
  reused: number;
}

export async function vqaEvaluate(raw: unknown): Promise<VqaEvaluateResult> {
  const input = parseWorkflowInput('vqaEvaluate', VqaEvaluateInput, raw);
  const progress: VqaEvaluateProgress = { total: 0, pending: 0, made: 0, reused: 0 };
  setHandler(vqaEvaluateProgressQuery, () => progress);
  const inference = proxyFor(VqaInferenceActivities, input.taskQueue, VqaPresets.predictBatch);

  const keyed = { outputUri: input.outputUri, itemsUri: input.itemsUri, modelKey: input.modelKey, benchmark: input.benchmark };
  const { pending, total } = await store.pendingItems({ ...keyed, model: input.model.name });
  progress.total = total;
  progress.pending = pending.length;
  progress.reused = total - pending.length;
  const batches: string[][] = [];
  for (let i = 0; i < pending.length; i += input.batchSize) batches.push(pending.slice(i, i + input.batchSize));
  // Batches run one after another per child: the backend's concurrency is within a batch.
  for (const itemIds of batches) {
    const done = await inference.predictItems({ ...keyed, model: input.model, itemIds, concurrency: input.concurrency });
    progress.made += done.made;
    progress.reused += done.reused;
    progress.pending -= itemIds.length;
  }
  const score = await store.scoreBenchmark({ ...keyed, model: input.model.name });
  return { score, made: progress.made, reused: progress.reused };
}
