/**
 * Making and loading `shards-plan.json` (`ShardPlanFile`, data-schemas/shard.ts): which trajectory
 * goes to which split and shard. The assignment itself is pure (./plan.ts); this reads the records
 * and frame sizes it needs and caches the plan per worker.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Labeler } from '../../data-schemas/d-lan';
import type { DatasetManifest } from '../../data-schemas/manifest';
import { MANIFEST_FILE } from '../../data-schemas/manifest';
import { SHARD_PLAN_FILE, ShardFailure, ShardPlanFile, type ShardPlanKey } from '../../data-schemas/shard';
import { joinUri } from '../../data-schemas/uri';
import { DatasetInvalidError } from '../data/errors';
import { forEachConcurrent } from '../data/pool';
import { getJson } from '../store';
import type { ObjectStore } from '../store/types';
import { assignShards, estimateSampleBytes, plannedShards, type PlannedShard, type TrajectoryToPlace } from './plan';
import { samplesOf, type ShardSources } from './sources';

/** Reads of records and frames in flight while planning. */
const PLAN_CONCURRENCY = 16;

export interface PlanSettings {
  datasetUri: string;
  seed: number;
  validationFraction: number;
  targetShardBytes: number;
}

/**
 * The plan of a D_lan dataset: every record read (checked against its manifest sha256 and the
 * schema), its samples built to size it, its source recording's content hash looked up.
 * @throws DatasetInvalidError naming the record when a record, a frame listing or the labelers disagree
 */
export async function computePlan(
  sources: ShardSources,
  settings: PlanSettings,
  key: ShardPlanKey,
  manifest: DatasetManifest,
  heartbeat: (details: unknown) => void,
): Promise<ShardPlanFile> {
  const shaOf = new Map(manifest.files.map((f) => [f.path, f.sha256]));
  const planned: TrajectoryToPlace[] = [];
  let labeler: Labeler | undefined;
  let done = 0;
  await forEachConcurrent(manifest.trajectories, PLAN_CONCURRENCY, async (t) => {
    const recordUri = joinUri(settings.datasetUri, t.record);
    const sha = shaOf.get(t.record);
    if (sha === undefined) throw new DatasetInvalidError(`${joinUri(settings.datasetUri, MANIFEST_FILE)}: record ${t.record} is not listed in files`);
    const record = await sources.record(settings.datasetUri, t.record, sha);
    if (record.trajectoryId !== t.id) throw new DatasetInvalidError(`${recordUri}: trajectoryId ${record.trajectoryId} does not match the manifest's ${t.id}`);
    const samples = samplesOf(record, recordUri, key.directionLabels);
    const source = record.provenance.sourceDataset;
    const { files, contentSha256 } = await sources.drob(source);
    const estimatedBytes = estimateSampleBytes(samples, (path) => {
      const file = files.get(path);
      if (file === undefined) {
        throw new DatasetInvalidError(`${recordUri}: key frame ${joinUri(source, path)} is missing from its D_rob dataset (not in ${joinUri(source, MANIFEST_FILE)})`);
      }
      return file.bytes;
    });
    if (labeler === undefined) labeler = record.labeler;
    else if (labeler.name !== record.labeler.name || labeler.version !== record.labeler.version) {
      throw new DatasetInvalidError(`${recordUri}: labeler ${record.labeler.name}-${record.labeler.version} differs from the other records' ${labeler.name}-${labeler.version}`);
    }
    planned.push({ id: t.id, record: t.record, recordSha256: sha, contentSha256: await contentSha256(record.trajectoryId), samples: samples.length, estimatedBytes });
    if (++done % 100 === 0) heartbeat({ planned: done });
  });
  if (labeler === undefined) throw new DatasetInvalidError(`${settings.datasetUri} holds no trajectories: nothing to shard`);
  const { trajectories, shardsPerSplit } = assignShards(planned, settings);
  return {
    formatVersion: 1,
    key,
    datasetUri: settings.datasetUri,
    datasetName: manifest.name,
    labeler,
    plannedAt: new Date().toISOString(),
    shardsPerSplit,
    trajectories,
  };
}

export interface LoadedPlan {
  plan: ShardPlanFile;
  shards: PlannedShard[];
}

/**
 * The plan a writeShard or verifyShards works from, cached per worker by ETag. The cache holds
 * the read in flight, so the shards a worker starts together read and parse the plan once.
 * @throws ApplicationFailure PlanMissing when there is no plan; InvalidObjectError naming the file when it does not parse
 */
export function createPlanLoader(store: ObjectStore): (outputUri: string) => Promise<LoadedPlan> {
  let cache: { uri: string; etag: string; loaded: Promise<LoadedPlan> } | undefined;
  return async (outputUri) => {
    const uri = joinUri(outputUri, SHARD_PLAN_FILE);
    const head = await store.head(uri);
    if (!head) throw ApplicationFailure.nonRetryable(`${uri} is missing: run planShards (the shardDataset workflow) first`, ShardFailure.PlanMissing);
    if (head.etag !== undefined && cache?.uri === uri && cache.etag === head.etag) return cache.loaded;
    const loaded = getJson(store, uri, ShardPlanFile, `a shard plan (${SHARD_PLAN_FILE})`).then((plan) => ({ plan, shards: plannedShards(plan.trajectories) }));
    if (head.etag !== undefined) {
      const entry = { uri, etag: head.etag, loaded };
      cache = entry;
      loaded.catch(() => {
        if (cache === entry) cache = undefined;
      });
    }
    return loaded;
  };
}
