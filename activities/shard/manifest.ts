/**
 * What a shard set records about itself: each shard's sidecar (`ShardEntry`) and `shards.json`
 * (`ShardManifest`), both declared in data-schemas/shard.ts. Pure: the activities read and write them.
 */
import { SHARD_FORMAT, SHARD_FORMAT_VERSION, ShardEntry, ShardManifest, shardPath, type PlannedTrajectory, type ShardPlanFile, type ShardStage, type Split } from '../../data-schemas/shard';
import type { PlannedShard } from './plan';

/** The sidecar of a shard just written (or found equal to a fresh build). */
export function shardEntryOf(ref: { split: Split; index: number }, trajectories: readonly PlannedTrajectory[], digest: { sha256: string; bytes: number }): ShardEntry {
  return ShardEntry.parse({
    path: shardPath(ref.split, ref.index),
    split: ref.split,
    index: ref.index,
    sha256: digest.sha256,
    bytes: digest.bytes,
    samples: trajectories.reduce((n, t) => n + t.samples, 0),
    trajectories: trajectories.map((t) => t.id),
  });
}

/**
 * Why a written shard no longer matches its sidecar as far as the sidecar and the object's size
 * tell (other trajectories than planned, another size), or undefined: then only its sha256 is left to compare.
 */
export function sidecarMismatch(entry: ShardEntry, plannedIds: readonly string[], sidecarUri: string, shard: { uri: string; bytes: number }): string | undefined {
  if (entry.trajectories.join('\n') !== plannedIds.join('\n')) return `its sidecar ${sidecarUri} lists other trajectories than the plan`;
  if (shard.bytes !== entry.bytes) return `${shard.uri} is ${shard.bytes} bytes but its sidecar records ${entry.bytes}`;
  return undefined;
}

/** Whether a sidecar describes the planned shard: its path, and its trajectories in plan order. */
export function sidecarDescribes(entry: ShardEntry, shard: PlannedShard): boolean {
  return entry.path === shardPath(shard.split, shard.index) && entry.trajectories.join('\n') === shard.trajectories.map((t) => t.id).join('\n');
}

/**
 * `shards.json` of a plan whose shards are all written: `entries` are the sidecars in plan order.
 * Counts per split come from the plan, per stage from each trajectory's sample count.
 */
export function buildShardManifest(plan: ShardPlanFile, entries: readonly ShardEntry[], createdAt: string): ShardManifest {
  const bySplit = {
    train: { trajectories: 0, samples: 0, shards: 0 },
    validation: { trajectories: 0, samples: 0, shards: 0 },
  };
  const byStage: Partial<Record<ShardStage, number>> = { subtasks: 0, motion_plan: 0, action: 0, ...(plan.key.directionLabels && { direction: 0 }) };
  // A trajectory of N steps has 1 + 2N samples, or 1 + 3N with direction labels (buildSamples).
  const perStep = plan.key.directionLabels ? 3 : 2;
  for (const t of plan.trajectories) {
    bySplit[t.split].trajectories++;
    bySplit[t.split].samples += t.samples;
    const steps = (t.samples - 1) / perStep;
    for (const stage of Object.keys(byStage) as ShardStage[]) byStage[stage] = (byStage[stage] ?? 0) + (stage === 'subtasks' ? 1 : steps);
  }
  for (const e of entries) bySplit[e.split].shards++;
  return ShardManifest.parse({
    format: SHARD_FORMAT,
    formatVersion: SHARD_FORMAT_VERSION,
    createdAt,
    source: { dataset: plan.datasetUri, datasetManifestSha256: plan.key.datasetManifestSha256, labeler: plan.labeler, promptVersion: plan.key.promptVersion },
    split: { validationFraction: plan.key.validationFraction, seed: plan.key.seed },
    targetShardBytes: plan.key.targetShardBytes,
    counts: {
      shards: entries.length,
      samples: entries.reduce((n, e) => n + e.samples, 0),
      bytes: entries.reduce((n, e) => n + e.bytes, 0),
      bySplit,
      byStage,
    },
    shards: entries,
  });
}

/** Whether two shards.json describe the same shard set: equal apart from createdAt. */
export function sameShardSet(a: ShardManifest, b: ShardManifest): boolean {
  const strip = (m: ShardManifest): string => JSON.stringify({ ...m, createdAt: '' });
  return strip(a) === strip(b);
}
