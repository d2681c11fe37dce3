import { continueAsNew, defineQuery, setHandler, workflowInfo } from '@temporalio/workflow';
import { workflowQueue } from '../../data-schemas/activity-contract';
import { ShardActivities, ShardDatasetInput, ShardPresets, defaultShardOutput, type ShardDatasetResult, type ShardProgress, type ShardRef } from '../../data-schemas/shard';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';
import { VlaDataset, VlaStage, upsertKeywords } from '../search-attributes';

const planner = proxyFor(ShardActivities, workflowQueue('cpu'), ShardPresets.plan);
const writer = proxyFor(ShardActivities, workflowQueue('cpu'), ShardPresets.shard);

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
