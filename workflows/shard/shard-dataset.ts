import { continueAsNew, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { ShardActivities, ShardRef } from '../../activities/shard/activities';
import { DataErrorCode, StoreErrorCode } from '../../data-schemas/failures';
import { ShardDatasetInput, ShardFailure, defaultShardOutput, type ShardDatasetResult, type ShardProgress } from '../../data-schemas/training';
import { parseWorkflowInput } from '../input';
import { VlaDataset, VlaStage, upsertKeywords } from '../search-attributes';

/** Bad input or output that a retry reads again the same way. */
const DATA_ERRORS = [DataErrorCode.DatasetNotFound, DataErrorCode.DatasetInvalid, StoreErrorCode.NotFound, ShardFailure.OutputConflict, ShardFailure.Corrupt];

const planner = proxyActivities<ShardActivities>({
  // The first call reads every D_lan record (minutes for 100k trajectories) and heartbeats.
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8, nonRetryableErrorTypes: DATA_ERRORS },
});
const writer = proxyActivities<ShardActivities>({
  // One shard of ~targetShardBytes streamed to the store; heartbeats about every second.
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 8, nonRetryableErrorTypes: DATA_ERRORS },
});

export const shardProgressQuery = defineQuery<ShardProgress>('progress');

/** What one run hands to the next through continue-as-new: a cursor into the plan's shard list and counts. */
export interface ShardCarry {
  cursor: number;
  written: number;
  skipped: number;
  bytes: number;
}

/**
 * D_lan -> WebDataset tar shards: plan (split by trajectory hash, shards by estimated bytes), write
 * each shard with bounded concurrency (complete shards are skipped), verify what this run wrote (or
 * every shard when no shards.json exists yet), then write shards.json last, create-if-absent.
 * Continues as new when Temporal suggests it, so the history stays bounded with the shard count.
 */
export async function shardDataset(rawInput: unknown, carry?: ShardCarry): Promise<ShardDatasetResult> {
  const input = parseWorkflowInput('shardDataset', ShardDatasetInput, rawInput);
  const outputUri = input.outputUri ?? defaultShardOutput(input.datasetUri, input.seed, input.validationFraction);
  const progress: ShardProgress = { phase: 'planning', total: 0, done: carry?.cursor ?? 0, written: carry?.written ?? 0, skipped: carry?.skipped ?? 0, bytes: carry?.bytes ?? 0 };
  setHandler(shardProgressQuery, () => progress);
  upsertKeywords([{ key: VlaStage, value: 'shard' }]);

  const plan = await planner.planShards({
    datasetUri: input.datasetUri,
    outputUri,
    seed: input.seed,
    validationFraction: input.validationFraction,
    targetShardBytes: input.targetShardBytes,
    directionLabels: input.directionLabels,
  });
  upsertKeywords([{ key: VlaDataset, value: plan.datasetName }]);
  progress.total = plan.shards.length;
  progress.phase = 'writing';

  const doOne = async (ref: ShardRef): Promise<void> => {
    const result = await writer.writeShard({ outputUri, ...ref });
    // Shards checked when shards.json was written need no second read; all others do.
    if (result.written || !plan.complete) await writer.verifyShards({ outputUri, shards: [ref] });
    if (result.written) progress.written++;
    else progress.skipped++;
    progress.bytes += result.bytes;
    progress.done++;
  };

  let cursor = carry?.cursor ?? 0;
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  while (cursor < plan.shards.length && !failure && !workflowInfo().continueAsNewSuggested) {
    const ref = plan.shards[cursor++]!;
    const p: Promise<void> = doOne(ref)
      .catch((err: unknown) => {
        failure ??= { err };
      })
      .finally(() => running.delete(p));
    running.add(p);
    while (running.size >= input.maxConcurrentShards) await Promise.race(running);
  }
  // Activities never cross a continue-as-new, and the first failure ends the run after those in flight.
  await Promise.all(running);
  if (failure) throw failure.err;
  if (cursor < plan.shards.length) {
    await continueAsNew<typeof shardDataset>(input, { cursor, written: progress.written, skipped: progress.skipped, bytes: progress.bytes });
  }

  progress.phase = 'finalizing';
  const final = await planner.finalizeShards({ outputUri, datasetUri: input.datasetUri });
  progress.phase = 'done';
  return { manifestUri: final.manifestUri, outputUri, shards: final.shards, samples: final.samples, bytes: final.bytes, written: progress.written, skipped: progress.skipped };
}
